"""Resident login against the city's OpenID Connect provider (都市OS共通ID).

Authorization code + PKCE (S256) for a public native client, RFC 8252 style: a one-shot
HTTP listener on 127.0.0.1:<random port> receives the redirect from the system browser.
Tokens live only in a ``TokenStore`` (the store's own key file, or flet-secure-storage on a
phone); they are never written to SQLite and never logged. Refresh happens shortly before
expiry, and once more when the platform still answers 401 (``Session.auth``). Refresh
tokens rotate: each refresh stores the new one immediately.

authlib builds the authorization and token requests (RFC 6749, PKCE RFC 7636); joserfc
(authlib's JOSE library) verifies the ID token with any asymmetric algorithm the provider's
discovery document lists.

    session = Session("https://id.city.example", "mamori", store)
    session.login()                     # opens the browser, waits for the redirect
    http = PlatformHttp(url, tenant, auth=session.auth)
"""
from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from app.platform import BearerAuth

log = logging.getLogger(__name__)  # events only; never tokens, codes or claims

TOKENS_KEY = "mamori.oidc.tokens"
IDENTITY_KEY = "mamori.oidc.identity"  # who is logged in (from userinfo), kept for offline use
OUTBOX_KEY = "mamori.outbox.key"


class TokenStore(Protocol):
    """Secure key/value storage for secrets (flet-secure-storage in the app)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryTokenStore:
    """Secrets held in this process only: for tests, kiosks and 'don't remember me'."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        self._values[key] = value

    def delete(self, key: str) -> None:
        self._values.pop(key, None)


def install_key(store: TokenStore, name: str = OUTBOX_KEY) -> bytes:
    """The per-install 256-bit data key (e.g. for the outbox), created on first use."""
    encoded = store.get(name)
    if encoded is None:
        encoded = base64.b64encode(secrets.token_bytes(32)).decode()
        store.set(name, encoded)
    key = base64.b64decode(encoded)
    if len(key) != 32:
        raise ValueError(f"secure storage entry {name!r} is not a 256-bit key")
    return key


class LoginError(Exception):
    """Login, refresh or logout failed; the message says at which step (never with secrets)."""


def code_challenge(verifier: str) -> str:
    """S256 code challenge (RFC 7636 §4.2): BASE64URL(SHA256(ASCII(verifier))) without padding."""
    if not 43 <= len(verifier) <= 128:
        raise ValueError(f"PKCE code verifier must be 43..128 characters, got {len(verifier)}")
    return str(create_s256_code_challenge(verifier))


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge), RFC 7636 §4.1."""
    verifier = generate_token(96)  # 96 letters and digits from the OS random source, 571 bits
    return verifier, code_challenge(verifier)


def id_token_algorithms(advertised: object) -> tuple[str, ...]:
    """The ID-token algorithms to accept: every asymmetric one the provider advertises that joserfc
    implements (RS/PS/ES 256–512, EdDSA, ...). Never ``none`` or HMAC: a public client has no
    shared secret. OpenID Connect Discovery §3 makes RS256 the default when nothing is listed."""
    usable = set(JWSRegistry.algorithms) - {"none", "HS256", "HS384", "HS512"}
    listed = advertised if isinstance(advertised, list) and advertised else ["RS256"] if advertised is None else []
    return tuple(alg for alg in listed if isinstance(alg, str) and alg in usable)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is logged in (OIDC userinfo): kept beside the tokens, so roles work offline."""

    sub: str
    name: str
    roles: tuple[str, ...] = ()
    municipality: str | None = None  # 全国地方公共団体コード of the account, when the provider says

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Identity:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise LoginError("userinfo: the answer has no subject (sub)")
        roles = claims.get("roles") or ()
        municipality = claims.get("municipalityCode")
        return cls(sub, str(claims.get("name") or claims.get("preferred_username") or ""),
                   tuple(str(r) for r in roles) if isinstance(roles, list) else (),
                   str(municipality) if municipality else None)

    def to_json(self) -> str:
        return json.dumps({"sub": self.sub, "name": self.name, "roles": list(self.roles),
                           "municipalityCode": self.municipality})


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_algorithms: tuple[str, ...] = ("RS256",)
    userinfo_endpoint: str | None = None
    revocation_endpoint: str | None = None
    end_session_endpoint: str | None = None


def discover(issuer: str, http: httpx.Client) -> ProviderMetadata:
    """OpenID Connect Discovery 1.0: read and check ``/.well-known/openid-configuration``."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = http.get(url)
        response.raise_for_status()
        doc = response.json()
    except (httpx.HTTPError, ValueError) as err:
        raise LoginError(f"discovery at {url} failed: {type(err).__name__}") from None
    if doc.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise LoginError(f"discovery: issuer {doc.get('issuer')!r} does not match {issuer!r}")
    if "S256" not in doc.get("code_challenge_methods_supported", ["S256"]):
        raise LoginError("discovery: provider does not support PKCE S256")
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)]
    if missing:
        raise LoginError(f"discovery: provider metadata lacks {', '.join(missing)}")
    algorithms = id_token_algorithms(doc.get("id_token_signing_alg_values_supported"))
    if not algorithms:
        raise LoginError("discovery: the provider signs ID tokens with no algorithm this app can verify")
    return ProviderMetadata(issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
                            token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"],
                            id_token_algorithms=algorithms,
                            userinfo_endpoint=doc.get("userinfo_endpoint"),
                            revocation_endpoint=doc.get("revocation_endpoint"),
                            end_session_endpoint=doc.get("end_session_endpoint"))


@dataclass(slots=True)
class Tokens:
    access_token: str = field(repr=False)
    expires_at: float  # epoch seconds
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    refresh_at: float = 0.0  # refresh silently from this moment on, a little before expiry

    def to_json(self) -> str:
        return json.dumps({"access_token": self.access_token, "expires_at": self.expires_at,
                           "refresh_token": self.refresh_token, "id_token": self.id_token,
                           "refresh_at": self.refresh_at})

    @classmethod
    def from_json(cls, text: str) -> Tokens:
        data = json.loads(text)
        return cls(data["access_token"], float(data["expires_at"]), data.get("refresh_token"), data.get("id_token"),
                   float(data.get("refresh_at", data["expires_at"])))


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """One pending authorization request: what the redirect must match."""

    url: str
    redirect_uri: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    verifier: str = field(repr=False)


class Session:
    """The resident's login session; implements ``app.platform.Credentials``."""

    def __init__(self, issuer: str, client_id: str, store: TokenStore, *,
                 scope: str = "openid profile offline_access", http: httpx.Client | None = None,
                 clock: Callable[[], float] = time.time, refresh_margin: float = 60.0) -> None:
        self.issuer, self.client_id, self.scope = issuer, client_id, scope
        self._store, self._clock, self._margin = store, clock, refresh_margin
        self._http = http or httpx.Client(timeout=15.0)
        self._metadata: ProviderMetadata | None = None
        self._lock = threading.RLock()  # one refresh at a time: a rotated refresh token is single-use
        self.auth = BearerAuth(self)  # for every request to the platform (and userinfo)

    def close(self) -> None:
        self._http.close()

    @property
    def metadata(self) -> ProviderMetadata:
        if self._metadata is None:
            self._metadata = discover(self.issuer, self._http)
        return self._metadata

    @property
    def logged_in(self) -> bool:
        return self._tokens() is not None

    # -- login ----------------------------------------------------------------------------------
    def login(self, open_browser: Callable[[str], Any] = webbrowser.open, timeout: float = 300.0) -> dict[str, Any]:
        """Log in through the system browser; return the verified ID token claims."""
        with _LoopbackRedirect() as listener:
            request = self.authorization_request(listener.redirect_uri)
            log.info("login: opening the browser for the authorization request")
            if open_browser(request.url) is False:  # webbrowser.open found no browser
                raise LoginError("login: could not open a web browser on this device")
            params = listener.wait(timeout)
        return self.complete_login(request, params)

    def authorization_request(self, redirect_uri: str) -> AuthRequest:
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        url = prepare_grant_uri(self.metadata.authorization_endpoint, self.client_id, "code", redirect_uri, self.scope,
                                state, nonce=nonce, code_challenge=challenge, code_challenge_method="S256",
                                prompt="consent")
        return AuthRequest(url, redirect_uri, state, nonce, verifier)

    def complete_login(self, request: AuthRequest, params: dict[str, str]) -> dict[str, Any]:
        """Check the redirect's parameters, exchange the code, verify and store the tokens."""
        if params.get("state") != request.state:
            raise LoginError("login: the redirect's state does not match the request (possible CSRF)")
        if "error" in params:
            raise LoginError(f"login refused by the provider: {params['error']}")
        if params.get("iss") and params["iss"].rstrip("/") != self.metadata.issuer.rstrip("/"):
            raise LoginError("login: the redirect came from a different issuer (RFC 9207)")
        if not params.get("code"):
            raise LoginError("login: the redirect carries no authorization code")
        body = self._token_call("authorization_code", "code exchange", code=params["code"],
                                redirect_uri=request.redirect_uri, code_verifier=request.verifier)
        if not body.get("id_token"):
            raise LoginError("code exchange: the provider returned no ID token")
        claims = self._verify_id_token(body["id_token"], request.nonce)
        with self._lock:
            self._save(body, previous=None)
            self._store.delete(IDENTITY_KEY)  # maybe another account than before: userinfo tells
        log.info("login: tokens stored")
        return claims

    # -- Credentials protocol --------------------------------------------------------------------
    def access_token(self) -> str | None:
        with self._lock:
            tokens = self._tokens()
            if tokens is None:
                return None
            if self._clock() < tokens.refresh_at:
                return tokens.access_token
            if tokens.refresh_token is None:
                return tokens.access_token if tokens.expires_at > self._clock() else None
            return self._refresh(tokens)

    def refresh_after_rejection(self) -> str | None:
        with self._lock:
            tokens = self._tokens()
            if tokens is None or tokens.refresh_token is None:
                return None
            return self._refresh(tokens)

    def refresh(self) -> bool:
        """Refresh now; False when there is nothing to refresh or the provider said no."""
        return self.refresh_after_rejection() is not None

    # -- who, and logout ---------------------------------------------------------------------------
    def userinfo(self) -> dict[str, Any]:
        endpoint = self.metadata.userinfo_endpoint
        if not endpoint:
            raise LoginError("userinfo: the provider has no userinfo endpoint")
        if not self.logged_in:
            raise LoginError("userinfo: not logged in")
        try:
            response = self._http.get(endpoint, auth=self.auth)
        except httpx.HTTPError as err:
            raise LoginError(f"userinfo: provider unreachable ({type(err).__name__})") from None
        if response.status_code != 200:
            raise LoginError(f"userinfo: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise LoginError("userinfo: the answer is not a JSON object")
        return body

    def identity(self) -> Identity:
        """Who is logged in, asked of the provider now (network) and kept for offline use."""
        identity = Identity.from_claims(self.userinfo())
        with self._lock:
            if self._tokens() is not None:  # not logged out meanwhile
                self._store.set(IDENTITY_KEY, identity.to_json())
        return identity

    @property
    def last_identity(self) -> Identity | None:
        """Who was logged in when ``identity()`` last reached the provider; None when logged out."""
        text = self._store.get(IDENTITY_KEY)
        if text is None or not self.logged_in:
            return None
        try:
            return Identity.from_claims(json.loads(text))
        except (ValueError, LoginError):
            self._store.delete(IDENTITY_KEY)
            return None

    def logout(self) -> bool:
        """Revoke the tokens where the provider supports it, then forget them.

        Returns True when the provider confirmed the revocation; the local tokens are
        dropped either way, so a dead network cannot keep a resident logged in.
        """
        with self._lock:
            tokens = self._tokens()
            self._forget()
        if tokens is None:
            return False
        endpoint = self._metadata.revocation_endpoint if self._metadata else self._try_revocation_endpoint()
        if not endpoint:
            return False
        revoked = True
        for token, hint in ((tokens.refresh_token, "refresh_token"), (tokens.access_token, "access_token")):
            if token:
                try:
                    response = self._http.post(endpoint, data={"token": token, "token_type_hint": hint,
                                                               "client_id": self.client_id})
                    revoked = revoked and response.status_code == 200
                except httpx.HTTPError:
                    revoked = False
        log.info("logout: tokens dropped (revoked at provider: %s)", revoked)
        return revoked

    # -- internals -------------------------------------------------------------------------------
    def _try_revocation_endpoint(self) -> str | None:
        try:
            return self.metadata.revocation_endpoint
        except LoginError:
            return None

    def _tokens(self) -> Tokens | None:
        text = self._store.get(TOKENS_KEY)
        if text is None:
            return None
        try:
            return Tokens.from_json(text)
        except (ValueError, KeyError, TypeError):
            self._forget()  # unreadable: treat as logged out
            return None

    def _forget(self) -> None:
        self._store.delete(TOKENS_KEY)
        self._store.delete(IDENTITY_KEY)

    def _refresh(self, tokens: Tokens) -> str | None:
        try:
            body = self._token_call("refresh_token", "refresh", refresh_token=tokens.refresh_token)
        except _Rejected:
            log.info("refresh: refused by the provider; logged out")
            self._forget()
            return None
        except LoginError as err:  # network trouble: keep the tokens, use the old one while it lasts
            log.info("refresh failed: %s", err)
            return tokens.access_token if tokens.expires_at > self._clock() else None
        return self._save(body, previous=tokens).access_token

    def _save(self, body: dict[str, Any], previous: Tokens | None) -> Tokens:
        if body.get("token_type", "bearer").lower() != "bearer" or not body.get("access_token"):
            raise LoginError("token response lacks a bearer access token")
        now, lifetime = self._clock(), float(body.get("expires_in", 300))
        tokens = Tokens(
            access_token=body["access_token"],
            expires_at=now + lifetime,
            refresh_token=body.get("refresh_token") or (previous.refresh_token if previous else None),
            id_token=body.get("id_token") or (previous.id_token if previous else None),
            refresh_at=now + lifetime - min(self._margin, lifetime / 5))
        self._store.set(TOKENS_KEY, tokens.to_json())
        return tokens

    def _token_call(self, grant_type: str, step: str, **params: str | None) -> dict[str, Any]:
        form = prepare_token_request(grant_type, client_id=self.client_id, **params)
        try:
            response = self._http.post(self.metadata.token_endpoint, content=form,
                                       headers={"Accept": "application/json",
                                                "Content-Type": "application/x-www-form-urlencoded"})
        except httpx.HTTPError as err:
            raise LoginError(f"{step}: token endpoint unreachable ({type(err).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and isinstance(body, dict):
            return body
        error = body.get("error", f"HTTP {response.status_code}") if isinstance(body, dict) else response.status_code
        if response.status_code in (400, 401):
            raise _Rejected(f"{step}: refused ({error})")
        raise LoginError(f"{step}: {error}")

    def _verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            keys = KeySet.import_key_set(self._http.get(self.metadata.jwks_uri).raise_for_status().json())
            token = jwt.decode(id_token, keys, algorithms=self.metadata.id_token_algorithms)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.metadata.issuer},
                aud={"essential": True, "value": self.client_id},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True}, sub={"essential": True},
            ).validate(token.claims)
        except (JoseError, httpx.HTTPError, ValueError) as err:
            raise LoginError(f"ID token rejected: {type(err).__name__}") from None
        return dict(token.claims)


class _Rejected(LoginError):
    """The provider refused a grant (invalid_grant and friends): the tokens are dead."""


class _LoopbackRedirect:
    """One-shot listener on 127.0.0.1:<random port> for the authorization redirect (RFC 8252 §7.3)."""

    PAGE = ("<!doctype html><meta charset=utf-8><title>Mamori</title>"
            "<p>ログインが終わりました。このウィンドウを閉じて、アプリに戻ってください。</p>"
            "<p>Login finished. Close this window and go back to Mamori.</p>").encode()

    def __init__(self) -> None:
        self._result: dict[str, str] | None = None
        self._done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/callback" or outer._done.is_set():
                    self.send_error(404)
                    return
                outer._result = {k: v[0] for k, v in parse_qs(url.query).items()}
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(outer.PAGE)))
                self.end_headers()
                self.wfile.write(outer.PAGE)
                outer._done.set()

            def log_message(self, *args: Any) -> None:  # the query holds the code: never log it
                return

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self._server.server_port}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> dict[str, str]:
        if not self._done.wait(timeout):
            raise LoginError(f"login: no redirect from the browser within {timeout:.0f} s")
        assert self._result is not None
        return self._result
