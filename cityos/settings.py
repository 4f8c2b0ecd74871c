"""Server settings: command-line flags, falling back to CITYOS_* environment variables."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from geo.regions import DEFAULT_REGION, default_data_dir


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8400
    db_url: str = "sqlite:///.mamori/cityos.sqlite"
    data_dir: Path | None = None
    regions: tuple[str, ...] = (DEFAULT_REGION,)
    issuer: str | None = None  # None: http://host:port once the port is known
    access_token_ttl: int = 600
    refresh_token_ttl: int = 30 * 24 * 3600
    max_body_bytes: int = 4 * 1024 * 1024
    rate_limit: float = 200.0  # requests per second per caller; 0 = off
    rate_burst: int = 2000
    demo_accounts: bool = True
    log_level: str = "info"

    @property
    def default_tenant(self) -> str:
        return self.regions[0]


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def parse_args(argv: list[str] | None = None) -> Settings:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m cityos", description="Reference city-OS platform (OIDC + NGSI-LD + consent)")
    parser.add_argument("--host", default=_env("CITYOS_HOST", defaults.host))
    parser.add_argument("--port", type=int, default=int(_env("CITYOS_PORT", str(defaults.port))), help="0 = any free port")
    parser.add_argument("--db", default=_env("CITYOS_DB_URL", defaults.db_url), help="sqlite:///path or postgresql://...")
    parser.add_argument("--data-dir", type=Path, default=None, help="region data root (default: $MAMORI_DATA_DIR or ../shared/data)")
    parser.add_argument("--region", default=_env("CITYOS_REGIONS", ",".join(defaults.regions)), help="municipality code(s) to seed, comma-separated")
    parser.add_argument("--issuer", default=os.environ.get("CITYOS_ISSUER"))
    parser.add_argument("--access-token-ttl", type=int, default=int(_env("CITYOS_ACCESS_TOKEN_TTL", str(defaults.access_token_ttl))))
    parser.add_argument("--refresh-token-ttl", type=int, default=int(_env("CITYOS_REFRESH_TOKEN_TTL", str(defaults.refresh_token_ttl))))
    parser.add_argument("--max-body-bytes", type=int, default=int(_env("CITYOS_MAX_BODY_BYTES", str(defaults.max_body_bytes))))
    parser.add_argument("--rate-limit", type=float, default=float(_env("CITYOS_RATE_LIMIT", str(defaults.rate_limit))))
    parser.add_argument("--rate-burst", type=int, default=int(_env("CITYOS_RATE_BURST", str(defaults.rate_burst))))
    parser.add_argument("--no-demo-accounts", action="store_true", default=_env("CITYOS_DEMO_ACCOUNTS", "1") == "0")
    parser.add_argument("--log-level", default=_env("CITYOS_LOG_LEVEL", defaults.log_level), choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    regions = tuple(code.strip() for code in args.region.split(",") if code.strip())
    bad = [code for code in regions if not (len(code) == 6 and code.isdigit())]
    if bad or not regions:
        parser.error(f"--region needs 6-digit municipality codes, got {args.region!r}")
    if args.access_token_ttl < 1 or args.refresh_token_ttl < 1:
        parser.error("token lifetimes must be at least 1 second")
    return Settings(
        host=args.host,
        port=args.port,
        db_url=args.db,
        data_dir=args.data_dir or default_data_dir(),
        regions=regions,
        issuer=args.issuer,
        access_token_ttl=args.access_token_ttl,
        refresh_token_ttl=args.refresh_token_ttl,
        max_body_bytes=args.max_body_bytes,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        demo_accounts=not args.no_demo_accounts,
        log_level=args.log_level,
    )
