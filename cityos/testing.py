"""Start the real platform in tests: a subprocess on a free loopback port, a temp database.

    with run_cityos(tmp_path) as server:
        tokens = login(server, "ube-resident-1")
        httpx.get(server.base_url + "/ngsi-ld/v1/entities?type=EvacuationShelter")
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from cityos.accounts import DEMO_PASSWORD
from cityos.server import READY_PREFIX

APP_CLIENT_ID = "mamori-app"
LOOPBACK_REDIRECT = "http://127.0.0.1:{port}/callback"
START_TIMEOUT_S = 60.0  # generous: CI and shared machines start slowly under load
_ROOT = Path(__file__).resolve().parent.parent


class CityosStartError(RuntimeError):
    pass


@dataclass
class CityosProcess:
    """A running platform. ``log_text()`` is its stderr so far (the server log)."""

    args: list[str]
    env: dict[str, str]
    root: Path = _ROOT  # the source tree it runs from (a benchmark may run an older one)
    base_url: str = ""
    process: subprocess.Popen | None = None
    _log: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log_text(self) -> str:
        with self._lock:
            return "".join(self._log)

    def start(self, port: int = 0) -> None:
        args = [*self.args, "--port", str(port)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cityos", *args], cwd=self.root, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        )
        threading.Thread(target=self._pump_log, args=(self.process,), daemon=True).start()
        ready = self._wait_ready(self.process)
        self.base_url = ready

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def restart(self) -> None:
        """Stop, then start again on the same port and database."""
        port = self.port
        self.stop()
        self.start(port)

    def _pump_log(self, process: subprocess.Popen) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            with self._lock:
                self._log.append(line)

    def _wait_ready(self, process: subprocess.Popen) -> str:
        assert process.stdout is not None
        found: list[str] = []

        def read() -> None:
            for line in process.stdout:  # type: ignore[union-attr]
                if line.startswith(READY_PREFIX):
                    found.append(line[len(READY_PREFIX):].strip())
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not found:
            process.kill()
            process.wait(timeout=5)
            time.sleep(0.1)  # let the log pump drain
            raise CityosStartError(f"cityos did not become ready in {START_TIMEOUT_S:.0f} s; log:\n{self.log_text()[-4000:]}")
        return found[0]


@contextmanager
def run_cityos(
    tmp_dir: Path,
    region: str = "352021",
    db_url: str | None = None,
    data_dir: Path | None = None,
    access_token_ttl: int = 600,
    extra_args: Sequence[str] = (),
) -> Iterator[CityosProcess]:
    """Start ``python -m cityos`` on a free 127.0.0.1 port; stop it on exit."""
    db = db_url or f"sqlite:///{Path(tmp_dir) / 'cityos.sqlite'}"
    args = ["--host", "127.0.0.1", "--db", db, "--region", region, "--access-token-ttl", str(access_token_ttl), *extra_args]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOS_")}
    server = CityosProcess(args, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s256(verifier: str) -> str:
    """The S256 code_challenge of a PKCE code_verifier (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def authorize_code(server: CityosProcess | str, username: str, password: str = DEMO_PASSWORD, redirect_uri: str | None = None,
                   scope: str = "openid profile offline_access", verifier: str | None = None) -> tuple[str, str, str]:
    """Log in through the HTML form as a browser would; return (code, redirect_uri, code_verifier)."""
    base = server if isinstance(server, str) else server.base_url
    redirect_uri = redirect_uri or LOOPBACK_REDIRECT.format(port=53682)
    verifier = verifier or secrets.token_urlsafe(48)
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code", "client_id": APP_CLIENT_ID, "redirect_uri": redirect_uri, "scope": scope,
        "state": state, "nonce": secrets.token_urlsafe(16), "code_challenge": s256(verifier), "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=base, timeout=10) as client:
        form = client.get("/authorize", params=params)
        form.raise_for_status()
        answer = client.post("/authorize", data={**params, "username": username, "password": password})
    if answer.status_code != 302:
        raise RuntimeError(f"login as {username} failed: HTTP {answer.status_code}")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    if query.get("state") != [state]:
        raise RuntimeError("the authorization response lost the state")
    return query["code"][0], redirect_uri, verifier


def login(server: CityosProcess | str, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    """Full code + PKCE flow over HTTP; the token response (access_token, refresh_token, id_token, ...)."""
    base = server if isinstance(server, str) else server.base_url
    code, redirect_uri, verifier = authorize_code(base, username, password)
    answer = httpx.post(base + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "client_id": APP_CLIENT_ID, "code_verifier": verifier,
    }, timeout=10)
    answer.raise_for_status()
    return answer.json()
