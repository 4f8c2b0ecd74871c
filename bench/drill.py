"""A disaster-day drill: the reference platform, two residents, a shelter desk and the HQ.

    python -m bench drill [--reps 20]

Starts ``python -m cityos`` on loopback (SQLite) and drives real app clients — the app's
client layer, not the screens: each resident has its own SQLite store, outbox, sync engine
(``app.sync.OutboxSync``), family book and sync (``app.family``) and live event stream
(``app.sync.EventStream``); the desk uses ``app.checkin`` (ShelterDesk + CheckinPlatform); the
HQ uses ``app.platform.PlatformClient`` with a city_staff login. Every figure is measured from
the action to the moment the other client's local state shows it (p95 over ``--reps``):

* family_answer_to_member_s — A answers; B's book shows it (pushed by A, streamed to B);
* alert_to_banner_s — HQ publishes an alert; A's AlertDesk lists it as a banner for home;
* proxy_kept_sos — A sends an SOS with message and location, B answers for A: does B still
  see A's SOS with its message and location?
* desk_to_hq_s / desk_to_resident_list_s — the desk checks a household in or out and sends
  it at once; the HQ's read of the shelter / A's synced shelter list shows the new count;
* ride_restart_kept — a booked ride still known after a platform restart (a real restart).
The last line is the summary.
"""
from __future__ import annotations

import argparse
import math
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.checkin import CardMember, CheckinPlatform, EvacueeCard, ShelterDesk, desk_seal_keys, new_at_rest_key, show_qr
from app.consent import ConsentLedger, Consents, DataCategory
from app.devicekeys import MemoryKeyStore
from app.family import (
    AlertDesk,
    FamilyBook,
    FamilyClient,
    FamilySync,
    Place,
    Relation,
    alert_entity,
    read_alerts,
)
from app.i18n import Translator
from app.identity import MemoryTokenStore, install_key
from app.platform import BearerAuth, PlatformClient, PlatformHttp
from app.sync import EventStream, OutboxSync
from cityos.testing import CityosProcess, login, run_cityos
from offline.outbox import Outbox
from offline.store import open_store
from protocol.checkin._crypto import Ed25519PrivateKey

CODE = "352021"
HOME = (33.9516, 131.2467)  # central Ube
WAIT_S = 30.0


class Token:
    """``app.platform.Credentials`` from a real login (the drill is shorter than the token's life)."""

    def __init__(self, base_url: str, username: str) -> None:
        self.value = login(base_url, username)["access_token"]
        self.sub = httpx.get(base_url + "/userinfo", headers={"Authorization": f"Bearer {self.value}"}).json()["sub"]

    def access_token(self) -> str:
        return self.value

    def refresh_after_rejection(self) -> None:
        return None


class Resident:
    """One phone's client layer, with its live event stream feeding a queue."""

    def __init__(self, root: Path, base_url: str, username: str) -> None:
        self.token = Token(base_url, username)
        self.me = self.token.sub
        self.db = open_store(root / f"{username}.db")
        self.keys = MemoryKeyStore()
        ledger = ConsentLedger(self.db)
        self.outbox = Outbox(self.db, install_key(MemoryTokenStore()), ledger.is_granted)
        self.consents = Consents(self.db, self.outbox)
        self.http = PlatformHttp(base_url, CODE, auth=BearerAuth(self.token))  # the phone's one link
        self.client = PlatformClient(self.http)
        self.engine = OutboxSync(self.db, self.outbox, self.client)
        self.book = FamilyBook(self.db, self.keys, self.me, CODE, ledger.is_granted, self.outbox)
        self.family = FamilySync(self.book, FamilyClient(self.http), self.keys, self.consents)
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self.feed = EventStream(self.http, on_event=lambda n, d: self.events.put((n, d)))
        threading.Thread(target=self.feed.run, args=(self._stop,), daemon=True).start()

    def push(self) -> None:
        report = self.engine.push()
        if report.error is not None or report.rejected:
            raise RuntimeError(f"push failed: {report}")

    def wait_for(self, topic: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first ``topic`` event that makes ``done`` true (events the drill did not cause are skipped)."""
        ends = time.monotonic() + WAIT_S
        while True:
            name, data = self.events.get(timeout=max(0.01, ends - time.monotonic()))
            if name == topic and done(data):
                return data

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

    def close(self) -> None:
        self._stop.set()
        self.http.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _member(data: dict[str, Any], person: str) -> dict[str, Any] | None:
    return next((r for g in data.get("groups", []) for r in g["members"] if r["person"] == person), None)


def family_answer(a: Resident, b: Resident, group: str, reps: int) -> list[float]:
    times = []
    for i in range(reps):
        b.drain()
        start = time.perf_counter()
        answer = a.book.answer(("safe", "evacuating", "atShelter")[i % 3], message=f"drill {i}")
        a.push()

        def arrived(data: dict[str, Any], answer_id: str = answer.id) -> bool:
            row = _member(data, a.me)
            return bool(row and row.get("own") and row["own"]["answerId"]["value"] == answer_id)

        data = b.wait_for("family", arrived)
        b.family.apply_status(group, next(g["members"] for g in data["groups"] if g["id"] == group))
        row = next(s for s in b.book.family_status(group) if s.member.person == a.me)
        if row.own is None or row.own.id != answer.id:
            raise RuntimeError("B's book does not show A's answer")
        times.append(time.perf_counter() - start)
    return times


def alert_to_banner(a: Resident, hq: PlatformClient, reps: int) -> list[float]:
    desk = AlertDesk(a.db, Translator("ja"))
    home = [Place(HOME[0], HOME[1], CODE)]
    times = []
    for i in range(reps):
        a.drain()
        now = datetime.now(UTC)
        entity = alert_entity(f"drill-{i}-{int(time.time())}", CODE, hazard="flood", level=4, headline=f"訓練 {i}",
                              issued_at=now - timedelta(seconds=1), expires_at=now + timedelta(minutes=30),
                              municipalities=[CODE], is_test=True)
        start = time.perf_counter()
        hq.upsert([entity])
        shown = False
        while not shown:
            a.wait_for("alerts", lambda d: True)
            a.engine.pull("alerts")
            shown = any(b.alert.id == entity["id"] for b in desk.banners(read_alerts(a.engine.entities("alerts")), home))
        times.append(time.perf_counter() - start)
        ended = alert_entity(entity["id"].rsplit(":", 1)[-1], CODE, hazard="flood", level=4, headline=f"訓練 {i}",
                             issued_at=now - timedelta(seconds=1), expires_at=datetime.now(UTC), municipalities=[CODE], is_test=True)
        hq.upsert([ended])  # the HQ ends it: no alert piles up
    return times


def proxy_keeps_sos(a: Resident, b: Resident, group: str, reps: int) -> int:
    kept = 0
    for i in range(reps):
        message = f"2階に取り残されています {i}"
        a.book.answer("needHelp", message=message, lat=HOME[0], lon=HOME[1])
        a.push()
        b.book.answer("evacuating", person=a.me)
        b.family.push()
        b.family.pull()
        row = next(s for s in b.book.family_status(group) if s.member.person == a.me)
        sos = row.sos
        kept += bool(sos and sos.message == message and (sos.lat, sos.lon) == HOME and row.proxy and row.proxy.is_proxy)
        a.family.client.resolve_sos(a.me)
    return kept


class Desk:
    def __init__(self, root: Path, base_url: str, shelter_id: str) -> None:
        self.db, keys = open_store(root / "desk.db"), MemoryKeyStore()
        self.platform = CheckinPlatform(PlatformHttp(base_url, CODE, auth=BearerAuth(Token(base_url, "ube-staff-1"))),
                                        CODE, self.db)
        self.platform.fetch_public_keys()
        self.platform.fetch_desk_keys(keys)
        self.platform.fetch_device_keys()
        self.desk = ShelterDesk(self.db, self.platform.directory, desk_seal_keys(keys, CODE), new_at_rest_key(),
                                shelter_id, CODE, "drill desk")


def desk_counts(a: Resident, hq: Resident, base_url: str, root: Path, reps: int) -> tuple[list[float], list[float]]:
    shelter_id = next(iter(hq.client.iter_entities("EvacuationShelter", page_size=1)))["id"].rsplit(":", 1)[-1]
    phone_db = open_store(root / "card.db")
    phone = CheckinPlatform(a.http, CODE, phone_db)
    key = Ed25519PrivateKey.generate()
    phone.register_device(key.public_key())
    phone.fetch_public_keys()
    card = EvacueeCard(members=(CardMember("宇部 一郎"), CardMember("宇部 花子"), CardMember("宇部 次郎")))
    desk = Desk(root, base_url, shelter_id)
    entity_id = f"urn:ngsi-ld:EvacuationShelter:{shelter_id}"
    to_hq, to_list = [], []
    for i in range(reps):
        for client in (a, hq):
            client.drain()
        start = time.perf_counter()
        if i % 2 == 0:
            desk.desk.check_in_text(show_qr(card, key, phone.directory, CODE).text)
        else:
            desk.desk.check_out(card.ref)
        desk.platform.sync_desk(desk.desk)  # the desk sends each action at once
        expected = desk.desk.summary().persons
        results: dict[str, float] = {}

        # A thread that outlives its join timeout must not read the next round's values: bind them.
        def hq_sees(expected: int = expected, start: float = start, results: dict[str, float] = results) -> None:
            while (hq.client.get_entity(entity_id) or {}).get("occupancy", {}).get("value") != expected:
                hq.wait_for("shelters", lambda d: True)
            results["hq"] = time.perf_counter() - start

        def list_shows(expected: int = expected, start: float = start, results: dict[str, float] = results) -> None:
            def current() -> Any:
                return next((e.get("occupancy", {}).get("value") for e in a.engine.entities("shelter_status")
                             if e.get("id") == entity_id), None)

            a.engine.pull("shelter_status")
            while current() != expected:
                a.wait_for("shelters", lambda d: True)
                a.engine.pull("shelter_status")
            results["list"] = time.perf_counter() - start

        threads = [threading.Thread(target=f) for f in (hq_sees, list_shows)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(WAIT_S)
        if len(results) != 2:
            raise RuntimeError(f"desk action {i} not seen in {WAIT_S:.0f} s: {sorted(results)}")
        to_hq.append(results["hq"])
        to_list.append(results["list"])
    return to_hq, to_list


def ride_restart(server: CityosProcess, reps: int) -> str:
    """Book rides, restart the platform for real, and count the bookings it still knows."""
    token = Token(server.base_url, "ube-resident-1")
    headers = {"Authorization": f"Bearer {token.value}", "NGSILD-Tenant": CODE}
    booked = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=180) as http:
        http.post("/cityos/v1/consents", json={"category": "ride_history", "purpose": "transport", "recipient": "transport_operator"})
        for i in range(reps):
            body = {"pickup": {"lat": 33.9516, "lon": 131.2467}, "dropoff": {"lat": 33.9571, "lon": 131.2496}, "passengers": 1}
            answer = http.post("/rides/v1/rides", json=body, headers={"Idempotency-Key": f"drill-ride-{i}-{time.time_ns()}"})
            if answer.status_code not in (200, 201):
                return f"0/{reps}(booking refused: HTTP {answer.status_code} {answer.text[:80]})"
            booked.append(answer.json()["id"])
    server.restart()
    token = Token(server.base_url, "ube-resident-1")
    headers["Authorization"] = f"Bearer {token.value}"
    try:  # the first ride request after a start builds the dispatcher's road graph: allow for it
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=180) as http:
            kept = sum(http.get(f"/rides/v1/rides/{ride}").status_code == 200 for ride in booked)
    except httpx.HTTPError as exc:
        return f"0/{len(booked)}(no answer after the restart: {type(exc).__name__})"
    return f"{kept}/{len(booked)}"


def setup_family(a: Resident, b: Resident) -> str:
    """A family of two sharing answers; A shares location too and names B its caregiver."""
    group = a.family.create_group("訓練家族")
    b.family.join(a.family.invite(group, "一郎"))
    for phone in (a, b):
        phone.consents.grant(DataCategory.SAFETY_STATUS)
        phone.family.share("safety_status", "family", True)
    a.consents.grant(DataCategory.LOCATION)
    a.family.share("location", "family", True)
    a.family.share("safety_status", "caregiver", True)
    a.push()
    b.push()
    a.family.client.name_caregiver(b.me, Relation.FAMILY)
    b.family.pull()
    return group


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench drill", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with run_cityos(root / "cityos", data_dir=args.data_dir if args.data_dir.is_dir() else None,
                        access_token_ttl=3600, extra_args=["--rate-limit", "0"]) as server:
            a, b = Resident(root, server.base_url, "ube-resident-1"), Resident(root, server.base_url, "ube-resident-2")
            hq = Resident(root, server.base_url, "ube-city-1")
            try:
                group = setup_family(a, b)
                family_s = family_answer(a, b, group, args.reps)
                print(f"family answer → other member: p50 {sorted(family_s)[len(family_s) // 2]:.3f} s, p95 {p95(family_s):.3f} s")
                alert_s = alert_to_banner(a, hq.client, args.reps)
                print(f"HQ alert → resident banner: p50 {sorted(alert_s)[len(alert_s) // 2]:.3f} s, p95 {p95(alert_s):.3f} s")
                kept = proxy_keeps_sos(a, b, group, args.reps)
                print(f"SOS kept after a proxy answer: {kept}/{args.reps}")
                to_hq, to_list = desk_counts(a, hq, server.base_url, root, args.reps)
                print(f"desk → HQ: p95 {p95(to_hq):.3f} s; desk → resident list: p95 {p95(to_list):.3f} s")
            finally:
                for client in (a, b, hq):
                    client.close()
            rides = ride_restart(server, min(args.reps, 5))
            print(f"rides kept over a platform restart: {rides}")
    print(f"drill family_answer_to_member_s={p95(family_s):.2f} alert_to_banner_s={p95(alert_s):.2f} "
          f"proxy_kept_sos={kept}/{args.reps} desk_to_hq_s={p95(to_hq):.2f} desk_to_resident_list_s={p95(to_list):.2f} "
          f"ride_restart_kept={rides}")
    return 0
