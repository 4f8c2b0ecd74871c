"""Benchmark: outbox push and delta pull against the real reference platform on loopback.

Starts cityos (``cityos.testing.run_cityos``) in a temporary folder, logs a resident in
through the real code + PKCE flow, then times:
- push: 10,000 encrypted outbox records sent in batches by the sync engine;
- naive push: the same number sent one request per record (batch size 1);
- pull: 10,000 public entities fetched from the change feed into a fresh store.
Peak memory is this (client) process's maximum resident set size. Last line is the summary.

    python -m bench sync [--records 10000] [--batch 500]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from app.consent import ConsentLedger, Consents, DataCategory
from app.identity import MemoryTokenStore, Session, install_key
from app.platform import PlatformClient, PlatformHttp
from app.sync import Dataset, OutboxSync
from cityos.testing import run_cityos
from offline.outbox import Outbox
from offline.store import open_store
from protocol.entities import make_entity

TENANT = "352021"
PASSWORD = "mamori-demo"  # cityos demo accounts (docs/cityos.md)


def login(base_url: str, username: str) -> Session:
    """Real loopback login; the 'browser' submits cityos's login form like a resident would."""

    def browser(url: str) -> None:
        form = dict(parse_qsl(urlsplit(url).query))
        answer = httpx.post(url.split("?")[0], data={**form, "username": username, "password": PASSWORD})
        httpx.get(answer.headers["location"])

    session = Session(base_url, "mamori-app", MemoryTokenStore())
    session.login(open_browser=browser, timeout=30)
    return session


def card(i: int, prefix: str) -> dict:
    return make_entity("EvacueeCard", f"{prefix}-{i:05d}", TENANT, household=f"hh-{i // 4}",
                       needs=["infant"] if i % 7 == 0 else [], members=1 + i % 5)


def timed_push(folder: Path, base_url: str, session: Session, records: int, batch: int, prefix: str
               ) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) to push ``records`` queued records."""
    db = open_store(folder / f"{prefix}.db")
    outbox = Outbox(db, install_key(MemoryTokenStore()), ConsentLedger(db).is_granted)
    Consents(db, outbox).grant(DataCategory.EVACUEE_CARD)
    outbox.enqueue_many("evacuee_card", ((card(i, prefix), None) for i in range(records)))
    with PlatformHttp(base_url, TENANT, auth=session.auth) as http:
        engine = OutboxSync(db, outbox, PlatformClient(http), batch_size=batch)
        started, cpu = time.perf_counter(), time.process_time()
        report = engine.push()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        if report.error or report.sent != records + 1 or engine.state().queued:
            raise SystemExit(f"push {prefix} incomplete: {report}")
    db.close()
    return elapsed, cpu


def seed_alerts(base_url: str, count: int) -> None:
    staff = login(base_url, "ube-city-1")
    with PlatformHttp(base_url, TENANT, auth=staff.auth) as http:
        client = PlatformClient(http)
        for start in range(0, count, 1000):
            client.upsert([make_entity("Alert", f"bench-{i:05d}", TENANT, category="flood", severity="advisory",
                                       description=f"bench alert {i}") for i in range(start, min(count, start + 1000))])


def timed_pull(folder: Path, base_url: str, count: int) -> float:
    db = open_store(folder / "pull.db")
    outbox = Outbox(db, install_key(MemoryTokenStore()), ConsentLedger(db).is_granted)
    with PlatformHttp(base_url, TENANT) as http:  # logged out: public data
        engine = OutboxSync(db, outbox, PlatformClient(http), datasets=[Dataset("alerts", ("Alert",))])
        started = time.perf_counter()
        applied = engine.pull("alerts")
        elapsed = time.perf_counter() - started
    if applied != count or engine.state().datasets["alerts"].entity_count != count:
        raise SystemExit(f"pull incomplete: {applied} of {count}")
    db.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sync")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="upsert batch size of the sync engine")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, \
            run_cityos(Path(tmp), extra_args=["--rate-limit", "0", "--log-level", "warning"]) as server:
        folder = Path(tmp)
        session = login(server.base_url, "ube-resident-1")
        push_s, push_cpu = timed_push(folder, server.base_url, session, args.records, args.batch, "batched")
        print(f"push: {args.records} records in batches of {args.batch}: {push_s:.2f} s "
              f"({args.records / push_s:,.0f}/s; client CPU {push_cpu:.2f} s, the rest is the platform)")
        naive_s, _ = timed_push(folder, server.base_url, session, args.records, 1, "naive")
        print(f"naive push: {args.records} records, one request each: {naive_s:.2f} s "
              f"({args.records / naive_s:,.0f}/s, {naive_s / push_s:.1f}x slower)")
        seed_alerts(server.base_url, args.records)
        pull_s = timed_pull(folder, server.base_url, args.records)
        print(f"pull: {args.records} entities from the change feed: {pull_s:.2f} s ({args.records / pull_s:,.0f}/s)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scale = 10_000 / args.records
    print(f"sync push_10k_s={push_s * scale:.2f} pull_10k_s={pull_s * scale:.2f} "
          f"naive_push_10k_s={naive_s * scale:.2f} peak_mb={peak_mb:.0f}")
    return 0
