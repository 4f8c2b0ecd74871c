"""A tiny but real OpenID provider on loopback, for client tests that cityos cannot cover
(cityos signs ID tokens with RS256 only).

It speaks HTTP/1.1 with keep-alive and implements discovery, JWKS, authorize (auto-consent,
PKCE S256), token (code exchange; refresh with strict rotation: a reused refresh token
revokes its whole chain), userinfo, and ``/api/echo``, a resource that accepts only a
current access token. ``/api/status/<code>`` answers with that status and a ProblemDetails
body, for the client's error mapping.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

CLIENT_ID = "mamori-app"
SUB = "tiny-resident-1"
Key = RSAKey | ECKey | OKPKey | OctKey


def generate_key(alg: str) -> Key:
    """A fresh key of the family ``alg`` needs."""
    if alg.startswith(("RS", "PS")):
        return RSAKey.generate_key(2048)
    if alg.startswith("ES"):
        return ECKey.generate_key({"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg])
    if alg in ("EdDSA", "Ed25519"):
        return OKPKey.generate_key("Ed25519")
    if alg == "Ed448":
        return OKPKey.generate_key("Ed448")
    return OctKey.generate_key(256)


@dataclass
class IssuerState:
    alg: str
    key: Key
    advertised: list[str]
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access: set[str] = field(default_factory=set)
    refresh: dict[str, tuple[str, bool]] = field(default_factory=dict)  # token -> (chain, used)
    revoked_chains: set[str] = field(default_factory=set)
    refreshes: int = 0
    refused_refreshes: int = 0
    echo_hits: int = 0
    peers: set[int] = field(default_factory=set)  # client ports seen: one per TCP connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: IssuerState

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.state.peers.add(self.client_address[1])
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        if url.path == "/.well-known/openid-configuration":
            self._json(200, self._discovery())
        elif url.path == "/jwks":
            public = {"keys": [] if isinstance(self.state.key, OctKey) else
                      [self.state.key.as_dict(private=False, kid="k1", alg=self.state.alg)]}
            self._json(200, public)
        elif url.path == "/authorize":
            self._authorize(query)
        elif url.path == "/userinfo":
            if self._bearer_ok():
                self._json(200, {"sub": SUB, "name": "小さな 住民", "roles": ["resident", "shelter_staff"],
                                 "municipalityCode": "352021"})
        elif url.path == "/api/echo":
            with self.state.lock:
                self.state.echo_hits += 1
            if self._bearer_ok():
                self._json(200, {"ok": True})
        elif url.path.startswith("/api/status/"):
            status = int(url.path.rsplit("/", 1)[1])
            headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
            self._json(status, {"type": "urn:test:problem", "title": "Test problem", "detail": "asked for it",
                                **({"code": query["code"]} if "code" in query else {})},
                       content_type="application/problem+json", headers=headers)
        else:
            self._json(404, {"title": "Not Found"})

    def do_POST(self) -> None:
        self.state.peers.add(self.client_address[1])
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        if urlsplit(self.path).path != "/token" or form.get("client_id") != CLIENT_ID:
            self._json(400, {"error": "invalid_client"})
        elif form.get("grant_type") == "authorization_code":
            self._code_grant(form)
        elif form.get("grant_type") == "refresh_token":
            self._refresh_grant(form.get("refresh_token", ""))
        else:
            self._json(400, {"error": "unsupported_grant_type"})

    # -- endpoints ------------------------------------------------------------------------------
    def _discovery(self) -> dict[str, Any]:
        base = self.state.base_url
        return {"issuer": base, "authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks", "userinfo_endpoint": f"{base}/userinfo",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": self.state.advertised,
                "code_challenge_methods_supported": ["S256"]}

    def _authorize(self, query: dict[str, str]) -> None:
        if query.get("code_challenge_method") != "S256" or query.get("client_id") != CLIENT_ID:
            self._json(400, {"error": "invalid_request"})
            return
        code = secrets.token_urlsafe(16)
        self.state.codes[code] = query
        location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _code_grant(self, form: dict[str, str]) -> None:
        request = self.state.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if request is None or request["code_challenge"] != challenge or request["redirect_uri"] != form.get("redirect_uri"):
            self._json(400, {"error": "invalid_grant"})
            return
        self._json(200, self._issue(secrets.token_hex(8), id_token=self._id_token(request["nonce"])))

    def _refresh_grant(self, token: str) -> None:
        with self.state.lock:
            chain, used = self.state.refresh.get(token, ("", True))
            if not chain or used or chain in self.state.revoked_chains:
                if chain:
                    self.state.revoked_chains.add(chain)  # reuse: someone holds a stolen copy
                self.state.refused_refreshes += 1
                self._json(400, {"error": "invalid_grant"})
                return
            self.state.refresh[token] = (chain, True)
            self.state.refreshes += 1
            body = self._issue(chain)
        self._json(200, body)

    def _issue(self, chain: str, **extra: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.state.access.add(access)
        self.state.refresh[refresh] = (chain, False)
        return {"access_token": access, "token_type": "Bearer", "expires_in": 600, "refresh_token": refresh, **extra}

    def _id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.state.base_url, "aud": CLIENT_ID, "sub": SUB, "nonce": nonce, "iat": now, "exp": now + 300}
        return jwt.encode({"alg": self.state.alg, "kid": "k1"}, claims, self.state.key, algorithms=[self.state.alg])

    def _bearer_ok(self) -> bool:
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer ") and header[7:] in self.state.access:
            return True
        self._json(401, {"title": "Unauthorized"}, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return False

    def _json(self, status: int, body: Any, *, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def run_issuer(alg: str = "RS256", *, advertised: list[str] | None = None, key: Key | None = None
               ) -> Iterator[IssuerState]:
    """Serve a provider signing ID tokens with ``alg`` and advertising ``advertised`` (default [alg])."""
    state = IssuerState(alg, key or generate_key(alg), advertised if advertised is not None else [alg])
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def browser(url: str) -> None:
    """The 'system browser': the provider consents at once and redirects to the app's listener."""
    with httpx.Client(follow_redirects=True, timeout=10) as http:
        http.get(url).raise_for_status()
