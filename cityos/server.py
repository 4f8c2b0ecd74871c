"""Run the platform under uvicorn; print one ``cityos ready <url>`` line once connections are accepted."""
from __future__ import annotations

import logging
import os
import socket
import sys

import uvicorn

from cityos.settings import Settings

READY_PREFIX = "cityos ready "


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
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from cityos.app import create_app  # after logging is set up, so seeding messages show

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
    try:
        app = create_app(settings, issuer)
    except Exception as exc:  # a bad --db URL or an unreachable database: say so plainly
        logging.getLogger("cityos").error("cannot start: %s", exc)
        return 2
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    _Server(config, url).run(sockets=[sock])
    return 0
