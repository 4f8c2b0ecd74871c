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
    workers: int = 1  # >1: that many processes on one address (PostgreSQL only)
    access_log: float | None = None  # share of requests logged (0..1); None: all with one worker, none with more
    db_pool: int = 8  # database connections per worker (as many again on overflow)
    evacuation_fare_yen: int = 0  # per rider on an evacuation ride (the city may charge)

    @property
    def access_log_share(self) -> float:
        if self.access_log is not None:
            return self.access_log
        return 1.0 if self.workers == 1 else 0.0

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
    parser.add_argument("--workers", type=int, default=int(_env("CITYOS_WORKERS", str(defaults.workers))),
                        help="worker processes on one address (more than 1 needs PostgreSQL)")
    parser.add_argument("--access-log", type=float, default=_optional_float(os.environ.get("CITYOS_ACCESS_LOG")),
                        help="share of requests written to the access log, 0..1 (default: all with one worker, none with more; 5xx always)")
    parser.add_argument("--db-pool", type=int, default=int(_env("CITYOS_DB_POOL", str(defaults.db_pool))),
                        help="database connections per worker (as many again on overflow, and as many for one-statement writes)")
    parser.add_argument("--evacuation-fare-yen", type=int, default=int(_env("CITYOS_EVACUATION_FARE_YEN", "0")),
                        help="fare per rider on an evacuation ride (default 0: free)")
    args = parser.parse_args(argv)
    regions = tuple(code.strip() for code in args.region.split(",") if code.strip())
    bad = [code for code in regions if not (len(code) == 6 and code.isdigit())]
    if bad or not regions:
        parser.error(f"--region needs 6-digit municipality codes, got {args.region!r}")
    if args.access_token_ttl < 1 or args.refresh_token_ttl < 1:
        parser.error("token lifetimes must be at least 1 second")
    if not 1 <= args.workers <= 256:
        parser.error(f"--workers must be 1..256, got {args.workers}")
    if args.workers > 1 and not args.db.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        parser.error("--workers above 1 needs a PostgreSQL --db (SQLite is for one process)")
    if args.access_log is not None and not 0 <= args.access_log <= 1:
        parser.error(f"--access-log must be a share between 0 and 1, got {args.access_log}")
    if not 0 <= args.evacuation_fare_yen <= 100_000:
        parser.error(f"--evacuation-fare-yen must be 0..100000, got {args.evacuation_fare_yen}")
    if not 1 <= args.db_pool <= 200:
        parser.error(f"--db-pool must be 1..200, got {args.db_pool}")
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
        workers=args.workers,
        access_log=args.access_log,
        db_pool=args.db_pool,
        evacuation_fare_yen=args.evacuation_fare_yen,
    )


def _optional_float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        raise SystemExit(f"CITYOS_ACCESS_LOG must be a number between 0 and 1, got {value!r}") from None
