"""Start-up configuration: command-line flags, each with an environment variable twin."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from app.i18n import LANGUAGES
from geo.regions import DEFAULT_REGION


@dataclass(frozen=True, slots=True)
class Config:
    host: str
    port: int
    data_dir: Path | None  # None: the folder last chosen in Settings, else ../shared/data
    region: str | None  # None: the region last chosen in Settings, else Ube
    language: str | None  # None: keep the resident's saved choice
    platform_url: str | None
    store_path: Path
    reimport: bool


def parse_args(argv: list[str] | None = None) -> Config:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="mamori", description="Mamori (守り): offline resident safety app (web mode).")
    parser.add_argument("--host", default=env("MAMORI_HOST", "127.0.0.1"), help="address to serve on [MAMORI_HOST]")
    parser.add_argument("--port", type=int, default=int(env("MAMORI_PORT", "8550")), help="port [MAMORI_PORT, 8550]")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(data_dir) if (data_dir := env("MAMORI_DATA_DIR")) else None,
        help="region data folder [MAMORI_DATA_DIR, last chosen in Settings, ../shared/data]",
    )
    parser.add_argument("--region", default=env("MAMORI_REGION"),
                        help=f"municipality code or slug [MAMORI_REGION, last chosen, {DEFAULT_REGION} Ube]")
    parser.add_argument("--lang", choices=LANGUAGES, default=env("MAMORI_LANG"), help="language at start [MAMORI_LANG]")
    parser.add_argument("--platform-url", default=env("MAMORI_PLATFORM_URL"), help="city-OS platform base URL [MAMORI_PLATFORM_URL]")
    parser.add_argument(
        "--store",
        type=Path,
        default=Path(env("MAMORI_STORE") or Path(user_data_dir("Mamori", "Mamori")) / "mamori.sqlite"),
        help="local SQLite database [MAMORI_STORE, per-user data dir]",
    )
    parser.add_argument("--reimport", action="store_true", help="import the region data again at start")
    args = parser.parse_args(argv)
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        region=args.region,
        language=args.lang,
        platform_url=args.platform_url,
        store_path=args.store,
        reimport=args.reimport,
    )
