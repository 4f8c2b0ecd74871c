"""Mamori (守り) entry point: parse flags, open the local store, import the region on first
start, and serve the app in web mode on 127.0.0.1 with the Flet web client bundled (no CDN)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import flet as ft

from app.config import Config, parse_args
from app.connection import PlatformLink
from app.devicekeys import store_keys
from app.preferences import load_preferences
from app.state import Mamori
from geo.regionfiles import RegionFileError
from geo.regions import DEFAULT_REGION, RegionNotFound, default_data_dir, find_region
from offline.store import open_store
from views.shell import Shell

ASSETS = Path(__file__).resolve().parent / "assets"
log = logging.getLogger("mamori")


def build_app(config: Config) -> Mamori:
    keys = store_keys(config.store_path)  # before open_store: the migration asks whether the store existed
    db = open_store(config.store_path)
    saved = load_preferences(db)
    data_dir = config.data_dir or (Path(saved.data_dir) if saved.data_dir else default_data_dir())
    region = find_region(data_dir, config.region or saved.region or DEFAULT_REGION)
    link = PlatformLink(config.store_path, db, keys, config.platform_url, region.code)
    app = Mamori(db, region, keys, data_dir, config.language, link)
    try:
        for info in app.ensure_imported(force=config.reimport, progress=lambda name: log.info("importing %s", name)):
            log.info("imported %s: %d features from %s", info.dataset, info.feature_count, info.source_file)
    except RegionFileError as exc:
        # The previously imported data (if any) is intact; the app runs on it.
        log.error("region import failed, keeping previous data: %s", exc)
    return app


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    try:
        app = build_app(config)
    except RegionNotFound as exc:
        print(f"mamori: {exc}. Pass --data-dir (or MAMORI_DATA_DIR) pointing at the folder that holds regions/.", file=sys.stderr)
        return 2
    app.link.start_sync()
    log.info("Mamori on http://%s:%d (region %s, store %s)", config.host, config.port, app.region.code, config.store_path)
    ft.run(
        lambda page: Shell(page, app).start(),
        view=ft.AppView.WEB_BROWSER,
        host=config.host,
        port=config.port,
        assets_dir=str(ASSETS),
        no_cdn=True,
        # Flet's default in Chromium is skwasm, whose text layout never returned now and then
        # after the large-text switch (the page froze inside skwasm's paragraph_layout: 7 of 27
        # runs here; CanvasKit 0 of 28). CanvasKit is also the faster one at Flet's byte exchanges.
        web_renderer=ft.WebRenderer.CANVAS_KIT,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
