"""``python -m bench startup``: first-run import, warm start to first frame, nearest-10 query.

- import_s: a fresh store importing the whole Ube region (target ≤ 10 s);
- first_frame_s: `python main.py` on that (warm) store, from process start until Chromium
  shows the Home tab (target ≤ 4 s);
- nearest10_ms vs fullscan_ms: median over random origins, R*Tree versus distance-to-all
  (target ≤ 5 ms).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.shelters import ShelterDirectory
from geo.models import LatLon
from geo.region_import import import_region
from geo.regions import DEFAULT_REGION, default_data_dir, find_region
from offline.store import open_store

ROOT = Path(__file__).resolve().parent.parent


def time_import(store: Path, region) -> float:
    db = open_store(store)
    start = time.perf_counter()
    import_region(db, region)
    elapsed = time.perf_counter() - start
    db.conn.close()
    return elapsed


def time_queries(store: Path, region_code: str, rounds: int) -> tuple[float, float]:
    db = open_store(store)
    directory = ShelterDirectory(db, region_code)
    low, high = directory.bounds()
    rng = random.Random(7)
    origins = [LatLon(rng.uniform(low.lat, high.lat), rng.uniform(low.lon, high.lon)) for _ in range(rounds)]
    fast, slow = [], []
    for origin in origins:
        t = time.perf_counter()
        directory.nearest(origin, 10)
        fast.append(time.perf_counter() - t)
        t = time.perf_counter()
        directory.nearest_full_scan(origin, 10)
        slow.append(time.perf_counter() - t)
    db.conn.close()
    return statistics.median(fast) * 1000, statistics.median(slow) * 1000


def time_first_frame(store: Path, region_code: str) -> float:
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, free_port

    port = free_port()
    env = dict(os.environ, FLET_WEB_NO_CDN="true", FLET_FORCE_WEB_SERVER="true", MAMORI_STORE=str(store))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 430, "height": 900})
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--port", str(port), "--region", region_code],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    httpx.get(url, timeout=0.5)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            page.goto(url)
            page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=60_000)
            page.eval_on_selector("flt-semantics-placeholder", "e => e.click()")
            page.get_by_role("tab").first.wait_for(timeout=60_000)
            elapsed = time.perf_counter() - start
        finally:
            process.terminate()
            process.wait(10)
            browser.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench startup")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--rounds", type=int, default=300, help="random origins for the query timing")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium first-frame timing")
    args = parser.parse_args()
    region = find_region(default_data_dir(), args.region)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mamori.sqlite"
        import_s = time_import(store, region)
        print(f"first-run import of {region.folder.name}: {import_s:.2f} s (target ≤ 10 s)")
        nearest_ms, full_ms = time_queries(store, region.code, args.rounds)
        print(f"nearest-10 shelters: {nearest_ms:.2f} ms via R*Tree, {full_ms:.2f} ms full scan (target ≤ 5 ms)")
        first_frame = float("nan") if args.no_browser else time_first_frame(store, region.code)
        print(f"warm start to first frame in Chromium: {first_frame:.2f} s (target ≤ 4 s)")
    print(f"startup import_s={import_s:.2f} first_frame_s={first_frame:.2f} nearest10_ms={nearest_ms:.2f} fullscan_ms={full_ms:.2f}")
    return 0
