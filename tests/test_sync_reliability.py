"""Reliability of push against the real cityos platform: SIGKILL at random points, platform
restart, 5xx, timeouts, lost responses, slow answers and an access token expiring mid-batch.
After each scenario the platform must hold exactly the intended records: none lost, none
duplicated, each with its intended content. Faults come from a small HTTP proxy on loopback;
the platform behind it is the real server."""
from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from app.consent import ConsentLedger, Consents, DataCategory
from app.identity import TOKENS_KEY, MemoryTokenStore, Session
from app.platform import PlatformClient, PlatformHttp
from app.sync import Feature, OutboxSync, SyncContext, SyncEngine
from cityos.testing import run_cityos
from offline.outbox import Outbox
from offline.store import open_store
from protocol.entities import make_entity
from tests.test_identity_cityos import login

TENANT = "352021"
RECORDS = 2000
SYNCS, KILLS_PER_SYNC = 5, 4  # 20 SIGKILLs


def card(prefix: str, i: int) -> dict:
    return make_entity("EvacueeCard", f"{prefix}-{i:04d}", TENANT, household=f"{prefix}-hh-{i // 3}", members=1 + i % 6)


def fill_outbox(db_path: Path, key: bytes, prefix: str, count: int = RECORDS) -> None:
    db = open_store(db_path)
    outbox = Outbox(db, key, ConsentLedger(db).is_granted)
    Consents(db, outbox).grant(DataCategory.EVACUEE_CARD)
    outbox.enqueue_many("evacuee_card", ((card(prefix, i), None) for i in range(count)))
    db.close()


class EngineLink:
    """What the app's sync engine asks of the platform link: logged in, and no event stream."""

    configured = logged_in = True
    http = None


def push_all(db_path: Path, base_url: str, key: bytes, session: Session, batch: int = 100, timeout: float = 15.0,
             run_for: float = 60.0) -> OutboxSync:
    """Run the app's sync engine (its thread, fast backoff) with the outbox feature until the
    outbox is empty; fail after ``run_for`` s. Returns the outbox sync for its state."""
    watch = open_store(db_path)  # the UI watches through its own connection
    http = PlatformHttp(base_url, TENANT, auth=session.auth, timeout=timeout)
    outboxes: list[OutboxSync] = []

    def push(ctx: SyncContext) -> None:
        if not outboxes:  # built on the engine's thread, over its own connection
            outboxes.append(OutboxSync(ctx.db, Outbox(ctx.db, key, ConsentLedger(ctx.db).is_granted), PlatformClient(http),
                                       datasets=[], batch_size=batch))
        error = outboxes[0].push().error
        if error is not None:
            raise error

    engine = SyncEngine(lambda: open_store(db_path), EngineLink(), backoff_base_s=0.05, backoff_cap_s=0.5)  # type: ignore[arg-type]
    engine.register(Feature("outbox", push, pending=lambda db: queued(db), interval_s=0.05))
    engine.start()
    deadline = time.monotonic() + run_for
    while queued(watch) and time.monotonic() < deadline:
        time.sleep(0.05)
    engine.stop()
    watch.close()
    assert outboxes and outboxes[0].state().queued == 0, f"outbox not drained: {engine.state()}"
    http.close()
    return outboxes[0]


def queued(db) -> int:
    return db.execute("SELECT count(*) FROM sync_outbox WHERE rejected IS NULL").fetchone()[0]


def platform_ids(base_url: str, session: Session, prefix: str) -> list[str]:
    with PlatformHttp(base_url, TENANT, auth=session.auth) as http:
        return [e["id"] for e in PlatformClient(http).iter_entities("EvacueeCard", id_pattern=f"^urn:ngsi-ld:EvacueeCard:{prefix}-",
                                                      attrs=["members"])]


def assert_exactly_intended(base_url: str, session: Session, prefix: str, count: int = RECORDS) -> None:
    with PlatformHttp(base_url, TENANT, auth=session.auth) as http:
        stored = list(PlatformClient(http).iter_entities("EvacueeCard", id_pattern=f"^urn:ngsi-ld:EvacueeCard:{prefix}-"))
    ids = [e["id"] for e in stored]
    assert len(ids) == len(set(ids)), "duplicates on the platform"
    intended = {card(prefix, i)["id"]: card(prefix, i) for i in range(count)}
    assert set(ids) == set(intended), f"{len(set(intended) - set(ids))} lost, {len(set(ids) - set(intended))} extra"
    for entity in stored:
        want = intended[entity["id"]]
        assert (entity["members"]["value"], entity["household"]["value"]) == (
            want["members"]["value"], want["household"]["value"])


@pytest.fixture(scope="module")
def cityos(tmp_path_factory) -> Iterator:
    with run_cityos(tmp_path_factory.mktemp("cityos"), extra_args=["--rate-limit", "0", "--log-level", "warning"]) as server:
        yield server


@pytest.fixture(scope="module")
def secure_storage() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture(scope="module")
def resident(cityos, secure_storage) -> Session:
    return login(cityos.base_url, store=secure_storage)


# -- SIGKILL ----------------------------------------------------------------------------------------
def _child_push(db_path: str, base_url: str, key: bytes, tokens: str) -> None:
    """The app process: restore secure storage, push the outbox (killed at a random moment)."""
    secure = MemoryTokenStore()
    secure.set(TOKENS_KEY, tokens)
    db = open_store(db_path)
    outbox = Outbox(db, key, ConsentLedger(db).is_granted)
    with PlatformHttp(base_url, TENANT, auth=Session(base_url, "mamori-app", secure).auth) as http:
        OutboxSync(db, outbox, PlatformClient(http), datasets=[], batch_size=100).push()
    os._exit(0)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(cityos, resident, secure_storage, tmp_path) -> None:
    """SYNCS syncs of RECORDS records; each is SIGKILLed KILLS_PER_SYNC times at random moments
    (the app restarting in between), then resumes to the end. After every kill: nothing on the
    platform twice or unintended, and every intended record is on the platform or still queued."""
    fork = multiprocessing.get_context("fork")
    rng = random.Random(int(os.environ.get("MAMORI_KILL_SEED", "20240311")))
    tokens = secure_storage.get(TOKENS_KEY)  # the app's secure storage survives the kill
    key = os.urandom(32)
    kills: list[tuple[int, int]] = []  # (on platform, still queued) right after each kill
    for sync in range(SYNCS):
        prefix, db_path = f"k{sync}", tmp_path / f"kill-{sync}.db"
        fill_outbox(db_path, key, prefix)
        intended = {card(prefix, i)["id"] for i in range(RECORDS)}
        # Kill points follow the push's progress, not the clock, so they land inside the push
        # window on a fast machine and a loaded one alike; the extra jitter spreads them over
        # every phase of a batch (encrypting, in flight, committing).
        thresholds = sorted(rng.sample(range(50, RECORDS - 50), KILLS_PER_SYNC), reverse=True)
        for threshold in thresholds:
            child = fork.Process(target=_child_push, args=(str(db_path), cityos.base_url, key, tokens))
            child.start()
            wait_until_queued_below(db_path, threshold, child)
            time.sleep(rng.uniform(0, 0.03))
            child.kill()  # SIGKILL: no cleanup, no atexit, mid-transaction or mid-request
            child.join(10)
            on_platform = platform_ids(cityos.base_url, resident, prefix)
            assert len(on_platform) == len(set(on_platform)) and set(on_platform) <= intended
            db = open_store(db_path)
            waiting = {w.body["id"] for w in Outbox(db, key, lambda c: True).pending(RECORDS + 10) if w.op == "upsert"}
            db.close()
            assert intended <= set(on_platform) | waiting, "a record vanished from both outbox and platform"
            kills.append((len(on_platform), len(waiting)))
        push_all(db_path, cityos.base_url, key, resident)  # the app starts again and finishes
        assert_exactly_intended(cityos.base_url, resident, prefix)
    mid_sync = sum(0 < sent < RECORDS for sent, _ in kills)
    print(f"\nSIGKILL: {len(kills)} kills over {SYNCS} syncs of {RECORDS}; mid-sync: {mid_sync}; "
          f"(on platform, queued) at each kill: {kills}")
    assert mid_sync >= len(kills) * 3 // 4, f"kills mostly missed the push window: {kills}"


def wait_until_queued_below(db_path: Path, threshold: int, child, limit: float = 30.0) -> None:
    watch = open_store(db_path)
    deadline = time.monotonic() + limit
    try:
        while queued(watch) > threshold and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        watch.close()


# -- faults between client and platform ---------------------------------------------------------------
class FaultProxy:
    """Loopback HTTP proxy in front of the real platform that misbehaves on demand.

    ``plan(n, method, path)`` picks what happens to the n-th request: "pass", "503",
    "hang" (no answer until the client times out), "lost" (forwarded, then the connection
    drops before the answer: the platform did the work, the client does not know),
    or ("delay", seconds) before forwarding.
    """

    def __init__(self, upstream: str, plan: Callable[[int, str, str], object]) -> None:
        self.statuses: list[int] = []  # what the platform answered
        self.gateway_errors = 0  # requests the platform could not be reached for
        counter = iter(range(10**9))
        lock = threading.Lock()
        http = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    n = next(counter)
                action = plan(n, self.command, self.path)
                if action == "503":
                    self._answer(503, b'{"type":"about:blank","title":"Service Unavailable","status":503}')
                    return
                if action == "hang":
                    time.sleep(1.5)
                    self.close_connection = True
                    return
                if isinstance(action, tuple):
                    time.sleep(action[1])
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                try:
                    answer = http.request(self.command, self.path, content=body, headers=headers)
                except httpx.TransportError:  # platform down (restarting): what a gateway says
                    proxy.gateway_errors += 1
                    self._answer(502, b'{"type":"about:blank","title":"Bad Gateway","status":502}')
                    return
                with lock:
                    proxy.statuses.append(answer.status_code)
                if action == "lost":
                    self.close_connection = True
                    return
                self._answer(answer.status_code, answer.content, answer.headers.get("content-type"))

            def _answer(self, status: int, body: bytes, ctype: str | None = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PATCH = _any

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_5xx_timeouts_lost_answers_and_slow_responses(cityos, resident, tmp_path) -> None:
    rng = random.Random(5)
    actions = ["pass"] * 10 + ["503"] * 3 + ["hang"] * 2 + ["lost"] * 3 + [("delay", 0.3)] * 2

    def plan(n: int, method: str, path: str) -> object:
        return rng.choice(actions) if "entityOperations" in path else "pass"

    proxy = FaultProxy(cityos.base_url, plan)
    key = os.urandom(32)
    db_path = tmp_path / "faults.db"
    fill_outbox(db_path, key, "f", count=1000)
    try:
        push_all(db_path, proxy.url, key, resident, batch=50, timeout=1.0, run_for=60)
    finally:
        proxy.close()
    assert_exactly_intended(cityos.base_url, resident, "f", count=1000)


def test_platform_restart_mid_sync(cityos, resident, tmp_path) -> None:
    proxy = FaultProxy(cityos.base_url, lambda n, m, p: ("delay", 0.05))  # slow enough to restart mid-way
    key = os.urandom(32)
    db_path = tmp_path / "restart.db"
    fill_outbox(db_path, key, "r", count=1000)
    restarter = threading.Timer(0.3, cityos.restart)
    restarter.start()
    try:
        engine = push_all(db_path, proxy.url, key, resident, batch=50, timeout=2.0, run_for=60)
    finally:
        restarter.join()
        proxy.close()
    assert proxy.gateway_errors > 0, "the restart should have happened mid-sync"
    assert engine.state().last_error is None
    assert_exactly_intended(cityos.base_url, resident, "r", count=1000)


def test_access_token_expiring_mid_batch_is_refreshed_once(tmp_path) -> None:
    with run_cityos(tmp_path / "short", access_token_ttl=2, extra_args=["--rate-limit", "0"]) as server:
        session = login(server.base_url, refresh_margin=0)
        # The 3rd batch is held 2.5 s in transit: its token (≤ 2 s left) expires on the way.
        proxy = FaultProxy(server.base_url, lambda n, m, p: ("delay", 2.5) if n == 3 else "pass")
        key = os.urandom(32)
        fill_outbox(tmp_path / "ttl.db", key, "t", count=500)
        try:
            push_all(tmp_path / "ttl.db", proxy.url, key, session, batch=100, run_for=30)
        finally:
            proxy.close()
        assert 401 in proxy.statuses, "the delayed batch should have met an expired token"
        assert_exactly_intended(server.base_url, session, "t", count=500)
