"""``python -m bench screens``: every screen in ja / en / やさしい日本語 × normal / large text /
high contrast at phone size (390×844, 2× pixels, touch), on one contact sheet PNG under
test-artifacts/, with Flutter's error widgets counted on every screen scrolled to its end.

One app per mode (the mode is saved in its store before it starts, home set near Ube's
coast); each screen is opened by its URL. Prints one line per screen with a problem and a
summary line: ``screens n=… error_widgets=… layout_errors=… sheet=…``.
"""
from __future__ import annotations

import argparse
import io
import re
import shutil
import tempfile
import time
from pathlib import Path

from geo.models import LatLon
from geo.regions import DEFAULT_REGION

ROOT = Path(__file__).resolve().parent.parent
SHEET = ROOT / "test-artifacts" / "screens-contact-sheet.png"
LANGUAGES = ("ja", "en", "ja-easy")
MODES = ("normal", "large", "contrast")
HOME = LatLon(33.9420, 131.2480)  # near the coast of Ube: inside the tsunami scenario
BACK = re.compile("^(戻る|Back)$")  # a pushed screen's app bar (tabs show the navigation bar)
THUMB_W = 234  # pixels per screen on the sheet (0.6 of the 390 px phone)


def screens(store: Path) -> list[str]:
    """Every route a resident or desk staff can open (one shelter detail stands for all)."""
    from offline.store import open_store

    db = open_store(store)
    kind, sid = db.execute("SELECT kind, id FROM shelter ORDER BY id LIMIT 1").fetchone()
    db.conn.close()
    return [
        "/home", "/hazard", "/hazard/map", "/hazard/household", "/hazard/plan", "/hazard/supplies",
        "/family", "/shelters", "/shelters/map", f"/shelters/{kind}/{sid}", "/life", "/life/points",
        "/life/points/earn", "/life/points/spend", "/life/rides", "/life/rides/book", "/settings",
        "/settings/about", "/checkin", "/checkin/self", "/checkin/survey", "/checkin/desk",
    ]  # fmt: skip


def prepare_store(folder: Path, region: str) -> Path:
    """A store with the region imported (and its hazard scenarios derived) and home set."""
    from app.config import parse_args
    from main import build_app

    store = folder / "template" / "mamori.sqlite"
    store.parent.mkdir(parents=True)
    app = build_app(parse_args(["--store", str(store), "--region", region]))  # imports and derives the layers
    _ = app.evacuation.router  # layers and the street index, built once for every mode's copy
    app.set_home(HOME)
    app.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    app.db.conn.close()
    return store


def store_for(template: Path, folder: Path, language: str, mode: str) -> Path:
    from app.config import parse_args
    from main import build_app

    target = folder / f"{language}-{mode}"
    shutil.copytree(template.parent, target)
    app = build_app(parse_args(["--store", str(target / template.name)]))
    app.update_prefs(language=language, large_text=mode == "large", high_contrast=mode == "contrast")
    app.db.conn.close()
    return target / template.name


def shoot(browser, url: str, route: str) -> tuple[bytes, int, int]:
    """(top screenshot, screenfuls with error widgets while scrolling, console layout errors)."""
    from tests.browser.conftest import open_page, screen_error_widgets

    page = open_page(browser, url + route, ready=lambda p: p.get_by_role("tab").or_(p.get_by_role("button", name=BACK)).first)
    try:
        page.wait_for_load_state("networkidle")  # fonts and the screen's assets fetched
        png = settled(page)
        return png, screen_error_widgets(page, name=route.strip("/").replace("/", "-")), len(page.layout_errors)
    finally:
        page.close()


def settled(page, timeout_s: float = 20.0) -> bytes:
    """A screenshot once two taken 0.5 s apart are the same (the screen stopped changing: the
    session is connected, fonts are drawn, the first answers computed)."""
    deadline = time.monotonic() + timeout_s
    previous = page.screenshot()
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        png = page.screenshot()
        if png == previous:
            return png
        previous = png
    return previous


def contact_sheet(shots: dict[tuple[str, str, str], bytes], routes: list[str], errors: dict) -> Path:
    from PIL import Image, ImageDraw

    columns = [(lang, mode) for lang in LANGUAGES for mode in MODES]
    thumb_h = round(THUMB_W * 844 / 390)
    label_h, margin = 28, 8
    width = margin + len(columns) * (THUMB_W + margin)
    height = label_h + len(routes) * (thumb_h + label_h + margin)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (lang, mode) in enumerate(columns):
        draw.text((margin + c * (THUMB_W + margin), 8), f"{lang} / {mode}", fill="black")
    for r, route in enumerate(routes):
        y = label_h + r * (thumb_h + label_h + margin)
        for c, (lang, mode) in enumerate(columns):
            x = margin + c * (THUMB_W + margin)
            png = shots.get((route, lang, mode))
            bad = errors.get((route, lang, mode), 0)
            draw.text((x, y + 6), f"{route}" + (f"  ERROR x{bad}" if bad else ""), fill="red" if bad else "black")
            if png:
                thumb = Image.open(io.BytesIO(png)).convert("RGB").resize((THUMB_W, thumb_h))
                sheet.paste(thumb, (x, y + label_h - 4))
                if bad:
                    draw.rectangle((x, y + label_h - 4, x + THUMB_W - 1, y + label_h - 4 + thumb_h - 1), outline="red", width=4)
    SHEET.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(SHEET, optimize=True)
    return SHEET


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench screens")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--only", nargs="*", help="routes to shoot (default: every screen)")
    parser.add_argument("--languages", nargs="*", default=list(LANGUAGES))
    parser.add_argument("--modes", nargs="*", default=list(MODES))
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app

    started = time.perf_counter()
    shots: dict[tuple[str, str, str], bytes] = {}
    errors: dict[tuple[str, str, str], int] = {}
    layout = 0
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        folder = Path(tmp)
        template = prepare_store(folder, args.region)
        routes = args.only or screens(template)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for lang in args.languages:
            for mode in args.modes:
                app = start_app(store_for(template, folder, lang, mode), log_name=f"app-{lang}-{mode}.log")
                try:
                    for route in routes:
                        try:
                            png, bad, console = shoot(browser, app.url, route)
                        except Exception as exc:  # a screen that never drew: say which, go on
                            print(f"{lang}/{mode} {route}: did not draw ({type(exc).__name__})")
                            errors[(route, lang, mode)] = errors.get((route, lang, mode), 0)
                            continue
                        shots[(route, lang, mode)] = png
                        errors[(route, lang, mode)] = bad
                        layout += console
                        if bad or console:
                            print(f"{lang}/{mode} {route}: error_widgets={bad} layout_errors={console}")
                finally:
                    stop_app(app)
        browser.close()
    sheet = contact_sheet(shots, routes, errors)
    total = sum(errors.values())
    missing = len(routes) * len(args.languages) * len(args.modes) - len(shots)
    print(f"screens n={len(shots)} missing={missing} error_widgets={total} layout_errors={layout} "
          f"elapsed_s={time.perf_counter() - started:.0f} sheet={sheet.relative_to(ROOT)}")
    return 0
