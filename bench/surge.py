"""Benchmark: a whole city opens the app at once — safety answers and alert polls from 200 phones.

Starts the platform itself twice in one run, on loopback:
- baseline: the old layout, one process on the embedded SQLite, access log on;
- scaled: ``--workers N`` processes on PostgreSQL (scripts/pg-test-setup.sh), access log off.
Each simulated phone (async HTTP, one keep-alive connection pool per phone) answers with
SafetyStatus upserts (each answer its own entity, as the outbox sends it, retried with the
same id after a network error) and polls the public alert feed with ``If-None-Match``, both
in closed loops. Tokens come from the real login flow (the demo accounts, shared by the
phones); the ``safety_status`` consent is granted through the consent API. An alert is issued
half-way so the polls see a real change. In the scaled run one worker is SIGKILLed half-way
(the supervisor starts a new one). Afterwards the database must hold exactly the answers
acknowledged, none twice. Figures on a shared machine are pessimistic. Last line is the summary.

    python -m bench surge [--phones 200] [--seconds 20] [--workers 2]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from cityos.testing import CityosProcess, login, run_cityos

TENANT = "352021"
ACCOUNTS = ("ube-resident-1", "ube-resident-2", "ube-staff-1", "aizu-resident-1")
ROOT = Path(__file__).resolve().parents[1]
FEED = "/cityos/v1/changes"
UPSERT = "/ngsi-ld/v1/entityOperations/upsert"


@dataclass
class Tally:
    answer_ms: list[float] = field(default_factory=list)
    poll_ms: list[float] = field(default_factory=list)
    acked: dict[str, str] = field(default_factory=dict)  # entity id -> tenant
    retries: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    saw_alert: int = 0


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def tokens(server: CityosProcess) -> list[tuple[str, str]]:
    """(token, tenant) per demo account, each with the safety_status consent granted."""
    out = []
    for username in ACCOUNTS:
        token = login(server, username)["access_token"]
        granted = httpx.post(server.base_url + "/cityos/v1/consents", headers={"Authorization": f"Bearer {token}"},
                             json={"category": "safety_status", "purpose": "disaster_response", "recipient": "city"}, timeout=30)
        granted.raise_for_status()
        out.append((token, "072028" if username.startswith("aizu") else TENANT))
    return out


def answer(entity_id: str, tenant: str, n: int) -> dict:
    return {"id": entity_id, "type": "SafetyStatus", "municipalityCode": {"type": "Property", "value": tenant},
            "status": {"type": "Property", "value": "safe" if n % 3 else "needs_help"},
            "answeredAt": {"type": "Property", "value": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}


async def phone(k: int, base_url: str, auth: tuple[str, str], ends: float, tally: Tally) -> None:
    token, tenant = auth
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        await asyncio.gather(_answers(k, client, token, tenant, ends, tally), _polls(client, ends, tally))


async def _answers(k: int, client: httpx.AsyncClient, token: str, tenant: str, ends: float, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    n = 0
    while time.monotonic() < ends:
        entity_id = f"urn:ngsi-ld:SafetyStatus:surge-{k}-{n}-{uuid.uuid4().hex[:6]}"
        for _attempt in range(20):  # the outbox: resend the same entity until it is acknowledged
            started = time.perf_counter()
            try:
                sent = await client.post(UPSERT, json=[answer(entity_id, tenant, n)], headers=headers)
            except httpx.TransportError as exc:
                tally.retries += 1
                tally.errors[type(exc).__name__] = tally.errors.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.05)
                continue
            if sent.status_code in (201, 204):
                tally.answer_ms.append((time.perf_counter() - started) * 1000)
                tally.acked[entity_id] = tenant
                break
            tally.errors[str(sent.status_code)] = tally.errors.get(str(sent.status_code), 0) + 1
            await asyncio.sleep(0.05)
        n += 1


async def _polls(client: httpx.AsyncClient, ends: float, tally: Tally) -> None:
    cursor: str | None = None
    etag: str | None = None
    headers = {"NGSILD-Tenant": TENANT}
    while time.monotonic() < ends:
        params = {"type": "Alert", **({"after": cursor} if cursor else {})}
        started = time.perf_counter()
        try:
            got = await client.get(FEED, params=params, headers={**headers, **({"If-None-Match": etag} if etag else {})})
        except httpx.TransportError as exc:
            tally.errors[type(exc).__name__] = tally.errors.get(type(exc).__name__, 0) + 1
            await asyncio.sleep(0.05)
            continue
        tally.poll_ms.append((time.perf_counter() - started) * 1000)
        if got.status_code == 200:
            page = got.json()
            tally.saw_alert += len(page["changes"])
            if page["changes"] or cursor is None:
                cursor, etag = page["cursor"], None  # a new URL: its own ETag
            else:
                etag = got.headers.get("etag")
        elif got.status_code != 304:
            tally.errors[f"poll {got.status_code}"] = tally.errors.get(f"poll {got.status_code}", 0) + 1


async def surge(server: CityosProcess, phones: int, seconds: float, kill_worker: bool) -> tuple[Tally, float]:
    auths = tokens(server)
    city = login(server, "ube-city-1")["access_token"]
    tally = Tally()
    started = time.monotonic()
    ends = started + seconds
    tasks = [asyncio.create_task(phone(k, server.base_url, auths[k % len(auths)], ends, tally)) for k in range(phones)]
    await asyncio.sleep(seconds / 2)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        alert = {"id": f"urn:ngsi-ld:Alert:surge-{uuid.uuid4().hex[:8]}", "type": "Alert",
                 "level": {"type": "Property", "value": 4}, "headline": {"type": "Property", "value": "津波警報（訓練）"}}
        (await client.post(UPSERT, json=[alert], headers={"Authorization": f"Bearer {city}"})).raise_for_status()
    if kill_worker:
        victim = workers_of(server)[0]
        os.kill(victim, signal.SIGKILL)
        print(f"  killed worker {victim} (SIGKILL) half-way")
    await asyncio.gather(*tasks)
    return tally, time.monotonic() - started


def workers_of(server: CityosProcess) -> list[int]:
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def stored_answers(db_url: str) -> list[str]:
    sql = "SELECT id FROM entity WHERE type = 'SafetyStatus' AND deleted = false AND id LIKE 'urn:ngsi-ld:SafetyStatus:surge-%'"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.split("///", 1)[1]) as conn:
            return [r[0] for r in conn.execute(sql.replace("false", "0"))]
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute(sql)]


def run_layout(name: str, folder: Path, db_url: str, args: list[str], phones: int, seconds: float, kill: bool) -> dict:
    with run_cityos(folder, db_url=db_url, region="352021,072028", extra_args=["--rate-limit", "0", *args]) as server:
        tally, elapsed = asyncio.run(surge(server, phones, seconds, kill))
        if kill:
            print(f"  workers after the run: {len(workers_of(server))}")
    stored = stored_answers(db_url)
    lost = len(set(tally.acked) - set(stored))
    duplicated = len(stored) - len(set(stored)) + len(set(stored) - set(tally.acked))
    result = {
        "answers_per_s": len(tally.answer_ms) / elapsed, "answer_p99_ms": p99(tally.answer_ms),
        "polls_per_s": len(tally.poll_ms) / elapsed, "poll_p99_ms": p99(tally.poll_ms), "lost": lost, "duplicated": duplicated,
    }
    print(f"{name}: {len(tally.answer_ms)} answers, {len(tally.poll_ms)} polls in {elapsed:.1f} s; "
          + " ".join(f"{k}={v:.0f}" for k, v in result.items())
          + f"; retries={tally.retries} errors={tally.errors or 0} alert_changes_seen={tally.saw_alert}")
    return result


def pg_database(admin_url: str) -> str:
    name = f"surge_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, db_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench surge")
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    admin = os.environ.get("MAMORI_TEST_PG_URL") or subprocess.run(
        ["bash", str(ROOT / "scripts" / "pg-test-setup.sh")], capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = run_layout("baseline (1 process, SQLite)", folder / "base", f"sqlite:///{folder / 'base.sqlite'}", [],
                          args.phones, args.seconds, kill=False)
        db_url = pg_database(admin)
        try:
            new = run_layout(f"scaled ({args.workers} workers, PostgreSQL, one killed)", folder / "scaled", db_url,
                             ["--workers", str(args.workers)], args.phones, args.seconds, kill=args.workers > 1)
        finally:
            drop_database(admin, db_url)
    print(f"surge answers_per_s={new['answers_per_s']:.0f} answer_p99_ms={new['answer_p99_ms']:.0f} "
          f"polls_per_s={new['polls_per_s']:.0f} poll_p99_ms={new['poll_p99_ms']:.0f} "
          f"baseline_answers_per_s={base['answers_per_s']:.0f} baseline_polls_per_s={base['polls_per_s']:.0f} "
          f"lost={base['lost'] + new['lost']} duplicated={base['duplicated'] + new['duplicated']} workers={args.workers}")
    return 0
