"""``python -m bench startup``: first-run import, warm start to first frame, nearest-10 query.

- import_s: a fresh store importing the whole Ube region (target ≤ 10 s);
- first_frame_s: `python main.py` on that (warm) store, from process start until Chromium
  shows the Home tab (target ≤ 4 s): the median of ``--starts`` starts, each in a fresh browser
  (nothing cached) that is already running, as a resident's browser is, the clock started once
  the machine is quiet; the tab looked for on every animation frame;
- first_frame_cold_s: the same with the browser launched in the same instant as the app, so
  Chromium's own start (about 0.35 s on a 2-core VM) is counted too;
- flet_floor_s: the same clock on ``bench/_flet_floor.py``, one page with a tab bar served as
  Flet serves any app, started in turn with Mamori's warm starts: what Flet's server and client
  take with next to no app, on this machine at this hour (a VM's speed swings by the hour: set
  the two figures of one run side by side, not figures of different runs);
- nearest10_ms vs fullscan_ms: median over random origins, R*Tree versus distance-to-all
  (target ≤ 5 ms);
- route_taps: taps from Home to a drawn route with home set near the coast (target ≤ 1), and
  error_widgets: Flutter error widgets seen on Home (scrolled) and the route map (target 0;
  ``python -m bench screens`` counts them across every screen and mode).
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
from geo.hazards import ensure_scenario_layers
from geo.models import LatLon
from geo.region_import import import_region
from geo.regions import DEFAULT_REGION, default_data_dir, find_region
from offline.store import open_store

ROOT = Path(__file__).resolve().parent.parent
COASTAL_HOME = LatLon(33.9420, 131.2480)  # issue 12's home near Ube's coast: inside the tsunami scenario


def time_import(store: Path, region) -> float:
    db = open_store(store)
    start = time.perf_counter()
    import_region(db, region)
    ensure_scenario_layers(db, region.code)  # the app derives them with the first import too
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


def wait_until_quiet(idle_share: float = 0.8, window_s: float = 0.25, limit_s: float = 15.0) -> None:
    """Until the CPUs were ``idle_share`` idle over one ``window_s`` (Linux's /proc/stat), at most
    ``limit_s``: a browser just launched keeps working for a few seconds after its first page."""
    stat = Path("/proc/stat")
    if not stat.exists():
        time.sleep(2.0)
        return

    def cpu() -> tuple[int, int]:
        fields = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, all

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        idle0, all0 = cpu()
        time.sleep(window_s)
        idle1, all1 = cpu()
        if all1 > all0 and (idle1 - idle0) / (all1 - all0) >= idle_share:
            return


def mamori_command(region_code: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "--region", region_code]


FLOOR_COMMAND = [sys.executable, "-m", "bench._flet_floor"]


def time_first_frame(store: Path, command: list[str], browser_running: bool = True) -> float:
    """Seconds from starting ``command`` (given ``--port``) until Chromium shows a tab."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, free_port

    port = free_port()
    env = dict(os.environ, FLET_WEB_NO_CDN="true", FLET_FORCE_WEB_SERVER="true", MAMORI_STORE=str(store))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
        if browser_running:
            wait_until_quiet()
        start = time.perf_counter()
        process = subprocess.Popen(
            [*command, "--port", str(port)],
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
            # Checked on every frame: Playwright's own waits poll every 0.5 s after their first tries.
            page.wait_for_function(SHOWS_A_TAB, polling="raf", timeout=60_000)
            elapsed = time.perf_counter() - start
        finally:
            process.terminate()
            process.wait(10)
            browser.close()
    return elapsed


SHOWS_A_TAB = """() => [...document.querySelectorAll('[role=tab]')].some(tab => {
    const box = tab.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && box.top < innerHeight;
})"""


def route_taps(store: Path, home: LatLon) -> tuple[int, int]:
    """(taps from Home to a drawn route, error widgets seen on the way) with home set near the
    coast: the answer's route button is the one tap; -1 when Home offers none."""
    from playwright.sync_api import sync_playwright

    from app.config import parse_args
    from main import build_app
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, open_page, screen_error_widgets, start_app, stop_app

    app = build_app(parse_args(["--store", str(store)]))
    app.set_home(home)
    app.db.conn.close()
    running = start_app(store, log_name="bench-startup-app.log")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = open_page(browser, running.url)
            button = page.get_by_role("button", name=app.t("home.answer.show_route"))
            button.wait_for(timeout=60_000)  # once the street index is built in the background
            errors = screen_error_widgets(page, name="bench-home")
            button.click()
            page.get_by_role("button", name=app.t("map.fit_route")).wait_for(timeout=30_000)  # the route map, fitted
            page.wait_for_timeout(1000)  # the frame lags one step behind the tree
            errors += screen_error_widgets(page, scroll=False, name="bench-route-map")
            browser.close()
            return 1, errors
    except Exception as exc:  # Home offered no route: say so in the figure
        print(f"route_taps: no one-tap route from Home ({type(exc).__name__})")
        return -1, 0
    finally:
        stop_app(running)


def warm_starts(store: Path, command: list[str], starts: int) -> tuple[list[float], list[float]]:
    """``starts`` warm starts of ``command`` and of the floor, in turns (which goes first
    alternates), so that both meet the machine at the same speed."""
    app: list[float] = []
    floor: list[float] = []
    for i in range(starts):
        pair = [(app, command), (floor, FLOOR_COMMAND)]
        for times, run in pair if i % 2 == 0 else pair[::-1]:
            times.append(time_first_frame(store, run))
    return app, floor


def _report(what: str, starts: list[float], target: bool = True) -> float:
    median = statistics.median(starts) if starts else float("nan")
    print(f"{what}: {median:.2f} s median of {len(starts)} ({', '.join(f'{s:.2f}' for s in starts)})"
          + (" (target ≤ 4 s)" if target else ""))
    return median


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench startup")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--rounds", type=int, default=300, help="random origins for the query timing")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium first-frame timing")
    parser.add_argument("--starts", type=int, default=5, help="app starts timed to the first frame (median)")
    args = parser.parse_args()
    region = find_region(default_data_dir(), args.region)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "mamori.sqlite"
        import_s = time_import(store, region)
        print(f"first-run import of {region.folder.name}: {import_s:.2f} s (target ≤ 10 s)")
        nearest_ms, full_ms = time_queries(store, region.code, args.rounds)
        print(f"nearest-10 shelters: {nearest_ms:.2f} ms via R*Tree, {full_ms:.2f} ms full scan (target ≤ 5 ms)")
        mamori = mamori_command(region.code)
        starts, floor = ([], []) if args.no_browser else warm_starts(store, mamori, args.starts)
        first_frame = _report("warm start to first frame, browser running", starts)
        flet_floor = _report("the same for a one-page Flet app as Flet serves it, in turns with those", floor, target=False)
        cold = [] if args.no_browser else [time_first_frame(store, mamori, browser_running=False) for _ in range(args.starts)]
        first_frame_cold = _report("the same, browser launched with the app", cold)
        taps, errors = (-1, -1) if args.no_browser else route_taps(store, COASTAL_HOME)
        print(f"taps from Home to a drawn route: {taps} (target ≤ 1); error widgets on Home and the route map: {errors} (target 0)")
    print(f"startup import_s={import_s:.2f} first_frame_s={first_frame:.2f} first_frame_cold_s={first_frame_cold:.2f} "
          f"flet_floor_s={flet_floor:.2f} "
          f"nearest10_ms={nearest_ms:.2f} fullscan_ms={full_ms:.2f} "
          f"route_taps={taps} error_widgets={errors}")
    return 0
