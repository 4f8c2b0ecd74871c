"""Run the platform under uvicorn; print one ``cityos ready <url>`` line once connections are accepted.

``--workers N`` (PostgreSQL): the parent binds the address and runs N worker processes on it
(uvicorn's supervisor, which starts a new worker when one dies); each worker opens the database
itself (cityos/app.py); the parent has made the schema, key and seeds before starting them.
The ready line comes once a worker answers on the address.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from uvicorn.supervisors import Multiprocess

from cityos.settings import Settings

READY_PREFIX = "cityos ready "
_WORKER_ENV = "CITYOS_WORKER_SETTINGS"


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, url: str):
        super().__init__(config)
        self.url = url

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(READY_PREFIX + self.url, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"
    )


def serve(settings: Settings) -> int:
    _setup_logging(settings)
    try:
        sock = _bind(settings.host, settings.port)
    except OSError as exc:
        print(f"cityos: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 2
    host_in_url = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host_in_url}:{sock.getsockname()[1]}"
    issuer = (settings.issuer or url).rstrip("/")
    if not issuer.startswith("https://"):
        # authlib refuses plain http unless told; the issuer is loopback or a proxy terminates TLS.
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    if settings.workers > 1:
        return _serve_workers(settings, issuer, sock, url)
    # Imported after logging is set up, so seeding messages show.
    from cityos.app import create_app

    try:
        app = create_app(settings, issuer)
    except Exception as exc:  # a bad --db URL or an unreachable database: say so plainly
        logging.getLogger("cityos").error("cannot start: %s", exc)
        return 2
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    _Server(config, url).run(sockets=[sock])
    return 0


def _serve_workers(settings: Settings, issuer: str, sock: socket.socket, url: str) -> int:
    from cityos.app import prepare_database

    try:  # once, here: a worker (re)started later only opens the database
        prepare_database(settings)
    except Exception as exc:  # a bad --db URL or an unreachable database: say so plainly
        logging.getLogger("cityos").error("cannot start: %s", exc)
        return 2
    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(settings).items()}
    os.environ[_WORKER_ENV] = json.dumps({"settings": values, "issuer": issuer})
    config = uvicorn.Config(
        "cityos.server:worker_app", factory=True, workers=settings.workers, log_config=None, access_log=False,
        lifespan="on", timeout_graceful_shutdown=5, timeout_worker_healthcheck=10,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    threading.Thread(target=_announce_when_answering, args=(url,), daemon=True).start()
    Multiprocess(config, sockets=[sock]).run()
    return 0


def worker_app():
    """The ASGI app of one worker process (uvicorn calls this in each worker)."""
    spec = json.loads(os.environ[_WORKER_ENV])
    values = spec["settings"]
    values["regions"] = tuple(values["regions"])
    values["data_dir"] = Path(values["data_dir"]) if values["data_dir"] else None
    settings = Settings(**values)
    _setup_logging(settings)
    from cityos.app import create_app

    return create_app(settings, spec["issuer"], prepared=True)


def _announce_when_answering(url: str, limit_s: float = 60.0) -> None:
    ends = time.monotonic() + limit_s
    while time.monotonic() < ends:
        try:
            if httpx.get(url + "/.well-known/openid-configuration", timeout=2).status_code == 200:
                print(READY_PREFIX + url, flush=True)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    logging.getLogger("cityos").error("no worker answered on %s within %.0f s", url, limit_s)
