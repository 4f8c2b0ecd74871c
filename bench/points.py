"""Benchmark: balance and chart data from a device ledger of 100,000 entries.

The ledger is filled the way a phone restoring its history fills it: pages of the platform's
ledger applied with ``PointsLedger.apply_platform_entries`` (steps, blood pressure, classes,
coupons, donations, expiries over three years), on a file-backed store. Timed, best of
``--repeat`` each: ``balance()``; ``weekly_chart`` over the whole span; ``daily_chart`` over the
last 30 days. Last line is the summary (targets: balance and weekly chart ≤ 200 ms).

    python -m bench points [--events 100000] [--repeat 5] [--seed 7]
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from app.devicekeys import MemoryKeyStore
from app.points import PointsLedger, default_rules
from offline.store import open_store

MUNICIPALITY = "352021"  # 宇部市
DAYS = 3 * 365
_KINDS = (("steps", 0.57), ("blood_pressure", 0.25), ("health_class", 0.05), ("event", 0.05),
          ("coupon", 0.03), ("donation", 0.03), ("ride_fare", 0.015), ("expiry", 0.005))


def platform_history(count: int, last_day: date, rng: random.Random) -> Iterator[dict[str, Any]]:
    """``count`` settled entries as the platform's ledger endpoint returns them."""
    kinds, weights = zip(*_KINDS, strict=True)
    first = last_day - timedelta(days=DAYS - 1)
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        day = first + timedelta(days=n * DAYS // count)
        quantity = rng.randint(1500, 16000) if kind == "steps" else 1
        points = {"steps": min(10, quantity // 1000), "blood_pressure": 1, "health_class": 20, "event": 10,
                  "coupon": -50, "donation": -20, "ride_fare": -50, "expiry": -5}[kind]
        status = "rejected" if rng.random() < 0.01 else "confirmed"
        yield {"id": f"x:{n:08d}", "kind": kind, "day": day.isoformat(), "quantity": quantity,
               "points": 0 if status == "rejected" else points, "status": status,
               "reason": "over_daily_limit" if status == "rejected" else None}


def best_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench points")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = open_store(Path(tmp) / "mamori.sqlite")
        ledger = PointsLedger(db, MemoryKeyStore(), MUNICIPALITY, lambda: True)
        ledger.cache_rules(default_rules(MUNICIPALITY))
        today = ledger.today()
        history = list(platform_history(args.events, today, random.Random(args.seed)))
        start = time.perf_counter()
        for i in range(0, len(history), 1000):  # the pull's page size
            ledger.apply_platform_entries(history[i:i + 1000])
        fill_s = time.perf_counter() - start
        first = today - timedelta(days=DAYS - 1)
        balance = ledger.balance()
        weeks = ledger.weekly_chart(first, today)
        balance_ms = best_ms(ledger.balance, args.repeat)
        weekly_ms = best_ms(lambda: ledger.weekly_chart(first, today), args.repeat)
        daily_ms = best_ms(lambda: ledger.daily_chart(today - timedelta(days=29), today), args.repeat)
        expected = sum(e["points"] for e in history if e["status"] == "confirmed")
        assert balance.confirmed == expected, (balance.confirmed, expected)
        assert sum(w.points for w in weeks) == sum(e["points"] for e in history if e["status"] == "confirmed"
                                                   and e["kind"] in ("steps", "blood_pressure", "health_class", "event"))
        print(f"filled {args.events} entries in {fill_s:.1f} s (pages of 1000); balance {balance.confirmed}, "
              f"{len(weeks)} weeks")
        print(f"balance_ms={balance_ms:.1f} (target 200) weekly_chart_ms={weekly_ms:.1f} (target 200) "
              f"daily_chart_30d_ms={daily_ms:.1f}")
        db.conn.close()
    ok = balance_ms <= 200 and weekly_ms <= 200
    print(f"points balance_ms={balance_ms:.1f} weekly_chart_ms={weekly_ms:.1f} daily_chart_ms={daily_ms:.1f} "
          f"events={args.events} {'ok' if ok else 'SLOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
