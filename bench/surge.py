"""Benchmark: a whole city opens the app at once — safety answers and alert polls from 200 phones.

Starts the platform itself twice in one run, on loopback:
- baseline: the old layout — the platform as it was at ``--baseline`` (default a25bcac, when
  the issue was measured; its source from git), one process on the embedded SQLite;
- scaled: ``--workers N`` processes on PostgreSQL (scripts/pg-test-setup.sh), access log off.
Each simulated phone (async HTTP/1.1 over two keep-alive loopback connections) answers with
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
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg

from cityos.testing import CityosProcess, login, run_cityos
from geo.regions import default_data_dir

TENANT = "352021"
ACCOUNTS = ("ube-resident-1", "ube-resident-2", "ube-staff-1", "aizu-resident-1")
ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "a25bcac"  # main when the issue measured the one-process platform
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


class Connection:
    """One phone's keep-alive HTTP/1.1 connection (asyncio streams): a load generator light
    enough that the platform, not the phones, is what the figures measure. Reconnects after a
    dropped connection (a worker killed) and raises ConnectionError so the caller retries."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            writer.write(head.encode() + body)
            await writer.drain()
            status_line = await reader.readuntil(b"\r\n")
            fields: dict[str, str] = {}
            while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.decode("latin-1").partition(":")
                fields[name.strip().lower()] = value.strip()
            payload = await reader.readexactly(int(fields.get("content-length", "0")))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            self._streams = None
            raise ConnectionError(type(exc).__name__) from exc
        if fields.get("connection", "").lower() == "close":
            writer.close()
            self._streams = None
        return int(status_line.split()[1]), fields, payload

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


async def phone(k: int, base_url: str, auth: tuple[str, str], ends: float, tally: Tally) -> None:
    token, tenant = auth
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    answers, polls = Connection(host, int(port)), Connection(host, int(port))
    try:
        await asyncio.gather(_answers(k, answers, token, tenant, ends, tally), _polls(polls, ends, tally))
    finally:
        answers.close()
        polls.close()


def _count(tally: Tally, what: str) -> None:
    tally.errors[what] = tally.errors.get(what, 0) + 1


async def _answers(k: int, conn: Connection, token: str, tenant: str, ends: float, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    n = 0
    while time.monotonic() < ends:
        entity_id = f"urn:ngsi-ld:SafetyStatus:surge-{k}-{n}-{uuid.uuid4().hex[:6]}"
        body = json.dumps([answer(entity_id, tenant, n)]).encode()
        for _attempt in range(50):  # the outbox: resend the same entity until it is acknowledged
            started = time.perf_counter()
            try:
                status, _, _ = await conn.request("POST", UPSERT, headers, body)
            except ConnectionError as exc:
                tally.retries += 1
                _count(tally, str(exc))
                await asyncio.sleep(0.05)
                continue
            if status in (201, 204):
                tally.answer_ms.append((time.perf_counter() - started) * 1000)
                tally.acked[entity_id] = tenant
                break
            _count(tally, f"answer {status}")
            await asyncio.sleep(0.05)
        n += 1


async def _polls(conn: Connection, ends: float, tally: Tally) -> None:
    cursor: str | None = None
    etag: str | None = None
    while time.monotonic() < ends:
        target = FEED + "?" + urlencode({"type": "Alert", **({"after": cursor} if cursor else {})})
        headers = {"NGSILD-Tenant": TENANT, **({"If-None-Match": etag} if etag else {})}
        started = time.perf_counter()
        try:
            status, fields, payload = await conn.request("GET", target, headers)
        except ConnectionError as exc:
            _count(tally, str(exc))
            await asyncio.sleep(0.05)
            continue
        tally.poll_ms.append((time.perf_counter() - started) * 1000)
        if status == 200:
            page = json.loads(payload)
            tally.saw_alert += len(page["changes"])
            if page["changes"] or cursor is None:
                cursor, etag = page["cursor"], None  # a new URL: its own ETag
            else:
                etag = fields.get("etag")
        elif status != 304:
            _count(tally, f"poll {status}")


async def surge(server: CityosProcess, phones: int, seconds: float, kill_worker: bool) -> tuple[Tally, float]:
    auths = tokens(server)
    city = login(server, "ube-city-1")["access_token"]
    tally = Tally()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:  # the city's HQ
        started = time.monotonic()
        ends = started + seconds
        tasks = [asyncio.create_task(phone(k, server.base_url, auths[k % len(auths)], ends, tally)) for k in range(phones)]
        await asyncio.sleep(seconds / 2)
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
    """The worker processes (the supervisor's spawned children, not multiprocessing's resource tracker)."""
    assert server.process is not None
    pid = server.process.pid
    children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [c for c in children if b"spawn_main" in _cmdline(c) and b"resource_tracker" not in _cmdline(c)]


def server_cpu_s(server: CityosProcess) -> float:
    """CPU seconds used so far by the platform: the parent, its live workers and the workers it reaped."""
    assert server.process is not None
    pid = server.process.pid
    pids = [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stored_answers(db_url: str) -> list[str]:
    sql = "SELECT id FROM entity WHERE type = 'SafetyStatus' AND deleted = false AND id LIKE 'urn:ngsi-ld:SafetyStatus:surge-%'"
    if db_url.startswith("sqlite"):
        with sqlite3.connect(db_url.split("///", 1)[1]) as conn:
            return [r[0] for r in conn.execute(sql.replace("false", "0"))]
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute(sql)]


@contextmanager
def old_platform(folder: Path, commit: str, db_url: str) -> Iterator[CityosProcess]:
    """The platform as it was at ``commit`` (its own source tree, from git), one process."""
    tree = folder / f"cityos-{commit}"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOS_")}
    # The old tree imported zxing-cpp (since dropped from the client's packages): give it its own.
    site = folder / "baseline-site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site), "zxing-cpp"], check=True)
    env["PYTHONPATH"] = str(site)
    args = ["--host", "127.0.0.1", "--db", db_url, "--region", "352021,072028", "--rate-limit", "0", "--data-dir", str(default_data_dir())]
    server = CityosProcess(args, env, root=tree)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_layout(name: str, platform: AbstractContextManager[CityosProcess], args: list[str], db_url: str, phones: int, seconds: float,
               kill: bool) -> dict:
    with platform as server:
        cpu = server_cpu_s(server)
        tally, elapsed = asyncio.run(surge(server, phones, seconds, kill))
        cpu = server_cpu_s(server) - cpu
        if kill:
            wanted, waited = int(args[args.index("--workers") + 1]), time.monotonic()
            while len(workers_of(server)) < wanted and time.monotonic() - waited < 120:
                time.sleep(0.5)
            print(f"  workers after the run: {len(workers_of(server))} of {wanted} (a new worker replaced the killed one)")
    stored = stored_answers(db_url)
    lost = len(set(tally.acked) - set(stored))
    duplicated = len(stored) - len(set(stored)) + len(set(stored) - set(tally.acked))
    result = {
        "answers_per_s": len(tally.answer_ms) / elapsed, "answer_p99_ms": p99(tally.answer_ms),
        "polls_per_s": len(tally.poll_ms) / elapsed, "poll_p99_ms": p99(tally.poll_ms), "lost": lost, "duplicated": duplicated,
    }
    served = len(tally.answer_ms) + len(tally.poll_ms)
    print(f"{name}: {len(tally.answer_ms)} answers, {len(tally.poll_ms)} polls in {elapsed:.1f} s; "
          + " ".join(f"{k}={v:.0f}" for k, v in result.items())
          + f"; retries={tally.retries} errors={tally.errors or 0} alert_changes_seen={tally.saw_alert}; "
          f"platform CPU {cpu:.1f} s = {served / max(cpu, 1e-9):.0f} requests per CPU-second "
          f"({1000 * cpu / max(served, 1):.2f} ms of CPU per request)")
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
    parser.add_argument("--baseline", default=BASELINE_COMMIT, help="commit whose one-process platform is the baseline")
    args = parser.parse_args(argv)
    admin = os.environ.get("MAMORI_TEST_PG_URL") or subprocess.run(
        ["bash", str(ROOT / "scripts" / "pg-test-setup.sh")], capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base_db = f"sqlite:///{folder / 'base.sqlite'}"
        base = run_layout(f"baseline (the old layout: {args.baseline}, 1 process, SQLite)", old_platform(folder, args.baseline, base_db), [],
                          base_db, args.phones, args.seconds, kill=False)
        db_url = pg_database(admin)
        try:
            scaled = ["--rate-limit", "0", "--workers", str(args.workers)]
            new = run_layout(f"scaled ({args.workers} workers, PostgreSQL, one killed)",
                             run_cityos(folder / "scaled", db_url=db_url, region="352021,072028", extra_args=scaled), scaled, db_url,
                             args.phones, args.seconds, kill=args.workers > 1)
        finally:
            drop_database(admin, db_url)
    print(f"surge answers_per_s={new['answers_per_s']:.0f} answer_p99_ms={new['answer_p99_ms']:.0f} "
          f"polls_per_s={new['polls_per_s']:.0f} poll_p99_ms={new['poll_p99_ms']:.0f} "
          f"baseline_answers_per_s={base['answers_per_s']:.0f} baseline_polls_per_s={base['polls_per_s']:.0f} "
          f"lost={base['lost'] + new['lost']} duplicated={base['duplicated'] + new['duplicated']} workers={args.workers}")
    return 0
