"""OpenID Connect provider: authlib's core grants served by FastAPI/Starlette.

- authorization code flow, PKCE with S256 required for public clients (RFC 7636);
- exact redirect-URI match, except that a registered loopback redirect (127.0.0.1 / [::1])
  accepts any port (RFC 8252 §7.3);
- refresh-token rotation with reuse detection (a reused token revokes its whole family);
- access tokens are RS256 JWTs (RFC 9068 style) the resource endpoints verify locally.
Codes and refresh tokens are stored only as SHA-256 hashes.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import math
import re
import secrets
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, UserInfo
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import Connection, delete, select, text, update
from starlette.concurrency import run_in_threadpool

from cityos.accounts import Account, authenticate, get_account
from cityos.problems import Problem, unauthorized
from cityos.store import SESSION_CHANNEL, Store, auth_code, refresh_token, revoked_session, signing_key, used_code, utc_now
from cityos.throttle import LoginThrottle, SharedLoginThrottle

ACCESS_TOKEN_AUDIENCE = "cityos"
SCOPES = ("openid", "profile", "offline_access")
CODE_TTL = 120  # seconds an authorization code stays usable
VERIFIED_TOKENS_KEPT = 20_000  # per worker; about 1 kB each
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")

# authlib logs whole token responses at DEBUG ("Issue token {...}"): never let them through,
# whatever --log-level says.
logging.getLogger("authlib").setLevel(logging.INFO)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered OAuth client. The app is public: no secret, PKCE required."""

    client_id: str
    redirect_uris: tuple[str, ...]
    scope: str = " ".join(SCOPES)
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed) if scope else ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if redirect_uri in self.redirect_uris:
            return True
        return _loopback_without_port(redirect_uri) in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # public client: holds no secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def _loopback_without_port(uri: str) -> str | None:
    """``http://127.0.0.1:53412/callback`` -> ``http://127.0.0.1/callback``; None unless loopback http."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or port is None or parts.fragment:
        return None
    host = parts.netloc.rsplit(":", 1)[0]
    if host not in LOOPBACK_HOSTS:
        return None
    return parts._replace(netloc=host).geturl()


APP_CLIENT = Client(
    client_id="mamori-app",
    redirect_uris=("http://127.0.0.1/callback", "http://[::1]/callback", "jp.mamori.app:/oauth2redirect"),
)
CLIENTS = {APP_CLIENT.client_id: APP_CLIENT}


# --- signing keys --------------------------------------------------------------------------


class Keys:
    """The RS256 signing key, made once and kept in the database so restarts keep tokens valid."""

    def __init__(self, store: Store):
        with store.write() as conn:
            row = conn.execute(select(signing_key).order_by(signing_key.c.created_at.desc())).first()
            if row is None:
                key = RSAKey.generate_key(2048, auto_kid=True)
                conn.execute(signing_key.insert().values(kid=key.kid, private_jwk=key.as_dict(private=True), created_at=utc_now()))
            else:
                key = RSAKey.import_key(row.private_jwk)
        self.private = key
        self.kid: str = key.kid or key.thumbprint()
        self.public_set = KeySet([RSAKey.import_key(key.as_dict(private=False))])

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(k.as_dict(private=False), use="sig", alg="RS256") for k in self.public_set.keys]}

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        return jwt.encode({"alg": "RS256", "kid": self.kid, "typ": typ}, claims, self.private, algorithms=["RS256"])


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, from a verified access token."""

    sub: str
    municipality_code: str
    roles: frozenset[str]
    scope: str
    session: str | None = None  # the token family (sid): logout or revocation ends it


def verify_access_token(keys: Keys, issuer: str, token: str) -> Caller:
    """Check signature, issuer, audience and expiry; raise a 401 Problem otherwise."""
    return _verified_claims(keys, issuer, token)[0]


def _verified_claims(keys: Keys, issuer: str, token: str) -> tuple[Caller, float]:
    """The caller of a valid access token and until when (``exp``) it stays valid."""
    try:
        decoded = jwt.decode(token, keys.public_set, algorithms=["RS256"])
        registry = jwt.JWTClaimsRegistry(
            leeway=0,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": ACCESS_TOKEN_AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError):
        raise unauthorized("the access token is invalid or expired") from None
    if decoded.header.get("typ") != "at+jwt":
        raise unauthorized("not an access token")
    claims = decoded.claims
    code = claims.get("municipalityCode")
    if not isinstance(code, str):
        raise unauthorized("the access token has no municipalityCode")
    return Caller(claims["sub"], code, frozenset(claims.get("roles") or ()), claims.get("scope", ""), claims.get("sid")), float(claims["exp"])


# --- authlib wiring ------------------------------------------------------------------------


class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]):
        self._datalist: defaultdict[str, list] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list]:
        return self._datalist


class _Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: Any, query: list[tuple[str, str]], form: list[tuple[str, str]]):
        super().__init__(method, uri, headers=headers)
        self._args, self._form = dict(query), dict(form)
        self.payload = _Payload(query + form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _S256Challenge(CodeChallenge):
    """PKCE as RFC 8252 asks of native apps: S256 only, and required at the authorize step."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge is required (PKCE, S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code):
        return authorization_code.code_challenge_method


@dataclass
class _Code:
    client_id: str
    sub: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    family: str

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


@dataclass
class _RefreshToken:
    family: str
    sub: str
    client_id: str
    scope: str
    auth_time: int

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope


class Provider(AuthorizationServer):
    """authlib's AuthorizationServer with cityos's storage, tokens and Starlette responses."""

    def __init__(self, store: Store, keys: Keys, issuer: str, access_token_ttl: int, refresh_token_ttl: int):
        super().__init__(scopes_supported=list(SCOPES))
        self.store, self.keys, self.issuer = store, keys, issuer
        self.access_token_ttl, self.refresh_token_ttl = access_token_ttl, refresh_token_ttl
        self._ended: dict[str, float] = {}  # session family -> until when its access tokens could live
        self._ended_lock = threading.Lock()
        # Access tokens whose signature and claims checked out -> (caller, exp): a phone sends the
        # same token with every request for its lifetime, and an RS256 check costs more than
        # the rest of a cheap request. Expiry and ended sessions are still checked every time.
        self._verified: dict[str, tuple[Caller, float]] = {}
        # With several workers: True while this worker hears of sessions ended by the others
        # (NOTIFY, cityos/caching.py Notices); while it does not, ended sessions are looked up.
        self.hears_ended: Callable[[], bool] = lambda: True
        self.reload_ended()
        provider = self

        class SessionTokens:
            """Both grants: the token family (session id, ``sid``) goes into the access token."""

            request: Any

            def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
                credential = getattr(self.request, "refresh_token", None) or self.request.authorization_code
                return provider._generate_token(self.request.client, user, scope, include_refresh_token, credential.family)

        class CodeGrant(SessionTokens, AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none"]

            def save_authorization_code(self, code, request):
                data = request.payload.data
                with provider.store.write() as conn:
                    conn.execute(
                        auth_code.insert().values(
                            code_hash=_sha256(code), client_id=request.client.client_id, sub=request.user.sub,
                            redirect_uri=request.payload.redirect_uri, scope=request.payload.scope or "",
                            nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                            code_challenge_method=data.get("code_challenge_method"),
                            auth_time=int(time.time()), expires_at=time.time() + CODE_TTL,
                        )
                    )

            def query_authorization_code(self, code, client):
                # Consumed on first look: a code works once even under concurrent exchanges; a
                # replay ends the session its first use started (RFC 6749 §4.1.2).
                code_hash, now, family = _sha256(code), time.time(), uuid.uuid4().hex
                with provider.store.write() as conn:
                    row = conn.execute(select(auth_code).where(auth_code.c.code_hash == code_hash)).first()
                    if row is None:
                        used = conn.execute(select(used_code).where(used_code.c.code_hash == code_hash)).first()
                        if used is not None:
                            provider.end_session(conn, used.family)
                        return None
                    conn.execute(delete(auth_code).where(auth_code.c.code_hash == code_hash))
                    conn.execute(delete(auth_code).where(auth_code.c.expires_at < now))
                    conn.execute(delete(used_code).where(used_code.c.expires_at < now))
                    conn.execute(used_code.insert().values(code_hash=code_hash, family=family, expires_at=now + provider.refresh_token_ttl))
                if row.client_id != client.client_id or row.expires_at < now:
                    return None
                return _Code(row.client_id, row.sub, row.redirect_uri, row.scope, row.nonce, row.code_challenge, row.code_challenge_method,
                             row.auth_time, family)

            def delete_authorization_code(self, authorization_code):
                pass  # already deleted when it was looked up

            def authenticate_user(self, authorization_code):
                return get_account(provider.store, authorization_code.sub)

        class RotatingRefreshGrant(SessionTokens, RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["none"]
            INCLUDE_NEW_REFRESH_TOKEN = True

            def authenticate_refresh_token(self, token):
                return provider._consume_refresh_token(token)

            def authenticate_user(self, credential):
                return get_account(provider.store, credential.sub)

            def revoke_old_credential(self, credential):
                pass  # marked used atomically in authenticate_refresh_token

        class IdTokens(OpenIDCode):
            def exists_nonce(self, nonce, request):
                with provider.store.read() as conn:
                    found = conn.execute(
                        select(auth_code.c.code_hash).where(auth_code.c.nonce == nonce, auth_code.c.client_id == request.payload.client_id)
                    ).first()
                return found is not None

            def resolve_client_private_key(self, client):
                return provider.keys.private

            def get_client_algorithm(self, client):
                return "RS256"

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": provider.keys.kid, "typ": "JWT"}

            def get_authorization_code_claims(self, authorization_code):
                return {**super().get_authorization_code_claims(authorization_code), "sid": authorization_code.family}

            def get_client_claims(self, client):
                now = int(time.time())
                return {"iss": provider.issuer, "aud": [client.client_id], "iat": now, "exp": now + provider.access_token_ttl}

            def generate_user_info(self, user, scope):
                return provider.user_info(user, scope)

        self.register_grant(CodeGrant, [_S256Challenge(required=True), IdTokens(require_nonce=False)])
        self.register_grant(RotatingRefreshGrant)

    # authlib hooks
    def query_client(self, client_id):
        return CLIENTS.get(client_id)

    def save_token(self, token, request):
        if "refresh_token" not in token:
            return
        credential = getattr(request, "refresh_token", None) or request.authorization_code
        family, auth_time = credential.family, credential.auth_time
        with self.store.write() as conn:
            conn.execute(
                refresh_token.insert().values(
                    token_hash=_sha256(token["refresh_token"]), family=family, sub=request.user.sub,
                    client_id=request.client.client_id, scope=token.get("scope", ""), auth_time=auth_time,
                    expires_at=time.time() + self.refresh_token_ttl, used=False, revoked=False,
                )
            )

    def create_oauth2_request(self, request):
        return request  # built by the route from the already-read body

    def handle_response(self, status, body, headers):
        headers = dict(headers or [])
        if isinstance(body, dict):
            headers.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=headers)
        return Response(body or "", status_code=status, headers=headers)

    def send_signal(self, name, *args, **kwargs):
        pass  # no listeners

    # tokens
    def _generate_token(self, client: Client, user: Account, scope: str | None, include_refresh_token: bool, family: str) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": user.sub, "aud": ACCESS_TOKEN_AUDIENCE, "client_id": client.client_id,
            "scope": scope or "", "iat": now, "exp": now + self.access_token_ttl, "jti": uuid.uuid4().hex, "sid": family,
            "municipalityCode": user.municipality_code, "roles": list(user.roles),
        }
        token = {
            "token_type": "Bearer", "access_token": self.keys.sign(claims, typ="at+jwt"),
            "expires_in": self.access_token_ttl, "scope": scope or "",
        }
        if include_refresh_token and client.check_grant_type("refresh_token"):
            token["refresh_token"] = secrets.token_urlsafe(48)
        return token

    def _consume_refresh_token(self, token: str) -> _RefreshToken | None:
        with self.store.write() as conn:
            row = conn.execute(select(refresh_token).where(refresh_token.c.token_hash == _sha256(token))).first()
            if row is None:
                return None
            if row.used or row.revoked:
                self.end_session(conn, row.family)  # reuse: someone holds a stolen copy
                return None
            if row.expires_at < time.time():
                return None
            conn.execute(update(refresh_token).where(refresh_token.c.token_hash == row.token_hash).values(used=True))
        return _RefreshToken(row.family, row.sub, row.client_id, row.scope, row.auth_time)

    # sessions
    def end_session(self, conn: Connection, family: str) -> None:
        """Revoke a token family: its refresh tokens at once, its access tokens on their next use."""
        until = time.time() + self.access_token_ttl
        conn.execute(update(refresh_token).where(refresh_token.c.family == family).values(revoked=True))
        conn.execute(delete(revoked_session).where(revoked_session.c.family == family))
        conn.execute(delete(revoked_session).where(revoked_session.c.until < time.time()))
        conn.execute(revoked_session.insert().values(family=family, until=until))
        if conn.dialect.name == "postgresql":  # the other workers hear of it when this commits
            conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": SESSION_CHANNEL, "p": f"{family} {until!r}"})
        with self._ended_lock:
            self._ended[family] = until

    def session_ended_elsewhere(self, payload: str) -> None:
        """A ``SESSION_CHANNEL`` notice: another worker ended a session."""
        family, _, until = payload.rpartition(" ")
        try:
            ends = float(until)
        except ValueError:
            return
        with self._ended_lock:
            self._ended[family] = max(ends, self._ended.get(family, 0.0))

    def reload_ended(self) -> None:
        """Every session ended and not yet run out, from the database (at start, and when the
        notices listener is connected again after missing some)."""
        now = time.time()
        with self.store.read() as conn:
            rows = conn.execute(select(revoked_session).where(revoked_session.c.until > now)).all()
        with self._ended_lock:
            self._ended = {f: u for f, u in self._ended.items() if u > now}
            for row in rows:
                self._ended[row.family] = max(row.until, self._ended.get(row.family, 0.0))

    def _ended_in_database(self, family: str) -> bool:
        with self.store.read() as conn:
            return conn.execute(select(revoked_session.c.until).where(revoked_session.c.family == family,
                                                                      revoked_session.c.until > time.time())).first() is not None

    def verify(self, token: str) -> Caller:
        """A verified caller whose session has not ended; a 401 Problem otherwise."""
        now = time.time()
        known = self._verified.get(token)
        if known is not None and now <= known[1]:  # joserfc's check: expired once exp < now (leeway 0)
            caller = known[0]
        else:
            caller, expires = _verified_claims(self.keys, self.issuer, token)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                self._verified.pop(next(iter(self._verified)), None)  # the oldest entry
            self._verified[token] = (caller, expires)
        if caller.session is not None and (self._ended.get(caller.session, 0.0) > now
                                           or (not self.hears_ended() and self._ended_in_database(caller.session))):
            raise unauthorized("the session of this access token has ended (logout or revocation)")
        return caller

    def subject(self, token: str) -> str | None:
        """The ``sub`` of a token signed by this platform (expired or not), for per-caller limits."""
        known = self._verified.get(token)
        if known is not None:
            return known[0].sub
        try:
            return str(jwt.decode(token, self.keys.public_set, algorithms=["RS256"]).claims.get("sub") or "") or None
        except (JoseError, ValueError):
            return None

    def revoke(self, token: str, client_id: str) -> None:
        """RFC 7009: end the session of a refresh or access token of this client; unknown tokens are ignored."""
        family = self._family_of(token, client_id)
        if family is not None:
            with self.store.write() as conn:
                self.end_session(conn, family)

    def _family_of(self, token: str, client_id: str) -> str | None:
        if token.count(".") == 2:  # a JWT: an access or ID token we signed (expired ones too)
            try:
                claims = jwt.decode(token, self.keys.public_set, algorithms=["RS256"]).claims
            except (JoseError, ValueError):
                return None
            audience = claims.get("aud")
            owner = claims.get("client_id") or (audience[0] if isinstance(audience, list) and audience else audience)
            sid = claims.get("sid")
            return sid if claims.get("iss") == self.issuer and owner == client_id and isinstance(sid, str) else None
        with self.store.read() as conn:
            row = conn.execute(select(refresh_token).where(refresh_token.c.token_hash == _sha256(token))).first()
        return row.family if row is not None and row.client_id == client_id else None

    def user_info(self, user: Account, scope: str) -> UserInfo:
        info = UserInfo(sub=user.sub, municipalityCode=user.municipality_code, roles=list(user.roles))
        if "profile" in (scope or "").split():
            info["name"] = user.name
            info["preferred_username"] = user.username
        return info

    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "revocation_endpoint": f"{base}/revoke",
            "revocation_endpoint_auth_methods_supported": ["none"],
            "end_session_endpoint": f"{base}/logout",
            "jwks_uri": f"{base}/jwks.json",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "name", "preferred_username", "municipalityCode", "roles", "nonce", "auth_time", "sid"],
        }


# --- routes --------------------------------------------------------------------------------


_FORM = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ログイン / Log in — cityos</title>
<style>body{{font-family:sans-serif;max-width:24rem;margin:2rem auto;padding:0 1rem}}label{{display:block;margin-top:1rem}}
input{{width:100%;padding:.5rem;font-size:1rem}}button{{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}}
.error{{color:#b00020}}</style></head>
<body><main><h1>ログイン / Log in</h1><p>{client} があなたの都市OSアカウントを使います。 / {client} wants to use your city account.</p>
{error}<form method="post" action="/authorize">{hidden}
<label for="username">ユーザー名 / Username</label><input id="username" name="username" autocomplete="username" required>
<label for="password">パスワード / Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">ログイン / Log in</button></form></main></body></html>"""

# Printable ASCII without '"' and '\\' (RFC 6749 §A's NQCHAR; authlib cannot put them in an error
# description either), up to a sane length.
_SAFE_PARAM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{0,2048}")
_NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def _logout_page(status: int, message: str) -> HTMLResponse:
    page = ('<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>cityos</title></head>'
            f'<body><main><p role="status">{html.escape(message)}</p></main></body></html>')
    return HTMLResponse(page, status_code=status, headers=_NO_STORE)


def _unverified_audience(id_token: str) -> str | None:
    """The client an ID token names; ``Provider.revoke`` verifies the token before acting on it."""
    try:
        payload = id_token.split(".")[1]
        audience = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("aud")
    except (IndexError, ValueError, AttributeError):
        return None
    return audience[0] if isinstance(audience, list) and audience else audience if isinstance(audience, str) else None


def _login_page(params: list[tuple[str, str]], client_id: str, status: int, error: str = "") -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params if k not in ("username", "password")
    )
    error_html = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    page = _FORM.format(client=html.escape(client_id), error=error_html, hidden=hidden)
    return HTMLResponse(page, status_code=status, headers=_NO_STORE)


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qsl(body, keep_blank_values=True)


def _oauth_request(request: Request, provider: Provider, query: list[tuple[str, str]], form: list[tuple[str, str]]) -> _Request:
    uri = f"{provider.issuer}{request.url.path}" + (f"?{urlencode(query)}" if query else "")
    return _Request(request.method, uri, request.headers, query, form)


def _check_authorization(provider: Provider, req: _Request) -> Response | Any:
    bad = next((k for k, v in req.payload.data.items() if not _SAFE_PARAM.fullmatch(v)), None)
    if bad is not None:  # never echoed into a redirect or a header: refused here, without redirecting
        return JSONResponse({"error": "invalid_request", "error_description": f"{bad[:40]} holds characters a URL parameter may not"},
                            status_code=400)
    try:
        return provider.get_consent_grant(request=req)
    except OAuth2Error as error:
        return provider.handle_error_response(req, error)


def router(provider: Provider) -> APIRouter:
    api = APIRouter(tags=["OpenID Connect"])
    throttle = LoginThrottle() if provider.store.is_sqlite else SharedLoginThrottle(provider.store)

    @api.get("/.well-known/openid-configuration", summary="OpenID Connect discovery document")
    def discovery() -> dict[str, Any]:
        return provider.discovery()

    @api.get("/jwks.json", summary="Public signing keys (JWKS)")
    def jwks() -> dict[str, Any]:
        return provider.keys.jwks()

    @api.get("/authorize", summary="Authorization endpoint: HTML login form", response_class=HTMLResponse,
             responses={302: {"description": "redirect back to the client with an error"}, 400: {"description": "invalid request"}})
    def authorize_form(request: Request) -> Response:
        query = list(request.query_params.multi_items())
        req = _oauth_request(request, provider, query, [])
        grant = _check_authorization(provider, req)
        if isinstance(grant, Response):
            return grant
        return _login_page(query, req.payload.client_id, 200)

    @api.post("/authorize", summary="Submit the login form", response_class=HTMLResponse,
              responses={302: {"description": "redirect back to the client with code and state"},
                         400: {"description": "invalid request"}, 401: {"description": "wrong username or password"},
                         429: {"description": "too many wrong passwords for this username; Retry-After"}})
    async def authorize_submit(request: Request) -> Response:
        pairs = await _form_pairs(request)
        fields = dict(pairs)
        params = [(k, v) for k, v in pairs if k not in ("username", "password")]
        req = _oauth_request(request, provider, params, [])
        grant = await run_in_threadpool(_check_authorization, provider, req)
        if isinstance(grant, Response):
            return grant
        username = fields.get("username", "")
        address = request.client.host if request.client else "unknown"
        wait = throttle.begin(username, address)
        if wait > 0:
            page = _login_page(params, req.payload.client_id, 429,
                               "しばらく待ってから再度お試しください / Too many attempts: wait a minute and try again")
            page.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return page
        user = await run_in_threadpool(authenticate, provider.store, username, fields.get("password", ""))
        throttle.end(username, address, succeeded=user is not None)
        if user is None:
            return _login_page(params, req.payload.client_id, 401, "ユーザー名またはパスワードが違います / Wrong username or password")
        response = await run_in_threadpool(provider.create_authorization_response, req, user, grant)
        response.headers.update(_NO_STORE)
        return response

    @api.post("/token", summary="Token endpoint (authorization_code, refresh_token)",
              responses={400: {"description": "OAuth 2.0 error (RFC 6749 §5.2)"}, 401: {"description": "invalid client"}})
    async def token(request: Request) -> Response:
        req = _oauth_request(request, provider, [], await _form_pairs(request))
        response = await run_in_threadpool(provider.create_token_response, req)
        response.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        return response

    @api.post("/revoke", summary="Token revocation (RFC 7009): ends the session of a refresh or access token",
              responses={200: {"description": "revoked, or the token was unknown"}, 400: {"description": "OAuth 2.0 error"},
                         401: {"description": "unknown client"}})
    async def revoke(request: Request) -> Response:
        form = dict(await _form_pairs(request))
        if provider.query_client(form.get("client_id", "")) is None:
            return JSONResponse({"error": "invalid_client", "error_description": "client_id must name a registered client"}, status_code=401)
        if not form.get("token"):
            return JSONResponse({"error": "invalid_request", "error_description": "token is required"}, status_code=400)
        await run_in_threadpool(provider.revoke, form["token"], form["client_id"])
        return Response(status_code=200, headers={"Cache-Control": "no-store"})

    @api.api_route("/logout", methods=["GET", "POST"], response_class=HTMLResponse,
                   summary="End session (OpenID Connect RP-Initiated Logout 1.0): id_token_hint ends that session",
                   responses={302: {"description": "back to post_logout_redirect_uri"}, 400: {"description": "invalid request"}})
    async def logout(request: Request) -> Response:
        params = dict(request.query_params) | (dict(await _form_pairs(request)) if request.method == "POST" else {})
        client = provider.query_client(params.get("client_id", "")) if params.get("client_id") else None
        hint = params.get("id_token_hint", "")
        client_id = client.client_id if client else _unverified_audience(hint)
        if hint and client_id:
            await run_in_threadpool(provider.revoke, hint, client_id)
        target = params.get("post_logout_redirect_uri")
        if target:
            registered = provider.query_client(client_id or "")
            if registered is None or not registered.check_redirect_uri(target):
                return _logout_page(400, "post_logout_redirect_uri is not registered for this client")
            state = params.get("state")
            return Response(status_code=302,
                            headers={**_NO_STORE,
                                     "Location": target + ("&" if "?" in target else "?") + urlencode({"state": state} if state else {})})
        return _logout_page(200, "ログアウトしました / You are logged out")

    @api.api_route("/userinfo", methods=["GET", "POST"], summary="OpenID Connect userinfo (GET or POST, Core §5.3.1)",
                   responses={401: {"description": "missing or invalid bearer token"}})
    def userinfo(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return unauthorized("a bearer token is required", error="invalid_request").response()
        try:
            caller = provider.verify(header[7:].strip())
        except Problem as problem:
            return problem.response()
        user = get_account(provider.store, caller.sub)
        if user is None:
            return unauthorized("the account no longer exists").response()
        return JSONResponse(dict(provider.user_info(user, caller.scope)), headers={"Cache-Control": "no-store"})

    return api
