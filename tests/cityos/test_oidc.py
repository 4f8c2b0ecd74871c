"""OpenID Connect provider: discovery, JWKS, code + PKCE (S256 only), redirects, refresh rotation, userinfo."""
from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from cityos.accounts import DEMO_PASSWORD
from cityos.testing import APP_CLIENT_ID, authorize_code, login, run_cityos, s256

REDIRECT = "http://127.0.0.1:{port}/callback"


def _authorize_params(redirect_uri: str, **overrides: str | None) -> dict[str, str]:
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code", "client_id": APP_CLIENT_ID, "redirect_uri": redirect_uri,
        "scope": "openid profile offline_access", "state": "st-1", "nonce": "n-1",
        "code_challenge": s256(verifier), "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def _exchange(base: str, code: str, redirect_uri: str, verifier: str | None) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": APP_CLIENT_ID}
    if verifier is not None:
        data["code_verifier"] = verifier
    return httpx.post(base + "/token", data=data)


def test_discovery_and_jwks(server):
    config = httpx.get(server.base_url + "/.well-known/openid-configuration").json()
    assert config["issuer"] == server.issuer
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["token_endpoint"] == server.base_url + "/token"
    jwks = httpx.get(config["jwks_uri"]).json()
    assert jwks["keys"] and all(k["kty"] == "RSA" and "d" not in k for k in jwks["keys"])


def test_code_flow_with_pkce_gives_verifiable_tokens(server):
    tokens = login(server, "ube-resident-1")
    keys = KeySet.import_key_set(httpx.get(server.base_url + "/jwks.json").json())
    id_token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"])
    assert id_token.claims["iss"] == server.issuer
    assert id_token.claims["aud"] == [APP_CLIENT_ID]
    assert id_token.claims["municipalityCode"] == "352021"
    assert id_token.claims["preferred_username"] == "ube-resident-1"
    access = jwt.decode(tokens["access_token"], keys, algorithms=["RS256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["sub"] == id_token.claims["sub"]
    assert tokens["refresh_token"] and tokens["token_type"] == "Bearer"


def test_login_form_is_labelled_and_rejects_wrong_password(server):
    params = _authorize_params(REDIRECT.format(port=50001))
    page = httpx.get(server.base_url + "/authorize", params=params)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<label for="username">' in page.text and '<label for="password">' in page.text
    wrong = httpx.post(server.base_url + "/authorize", data={**params, "username": "ube-resident-1", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text


@pytest.mark.parametrize("challenge, method", [(None, None), ("plain-verifier-" + "x" * 40, "plain"), ("c" * 43, None)])
def test_pkce_s256_is_required(server, challenge, method):
    params = _authorize_params(REDIRECT.format(port=50002), code_challenge=challenge, code_challenge_method=method)
    answer = httpx.get(server.base_url + "/authorize", params=params)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["st-1"]


def test_token_exchange_needs_the_right_verifier_and_code_works_once(server):
    code, redirect_uri, verifier = authorize_code(server, "ube-resident-1")
    missing = _exchange(server.base_url, code, redirect_uri, None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    code, redirect_uri, verifier = authorize_code(server, "ube-resident-1")
    wrong = _exchange(server.base_url, code, redirect_uri, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code, redirect_uri, verifier = authorize_code(server, "ube-resident-1")
    assert _exchange(server.base_url, code, redirect_uri, verifier).status_code == 200
    again = _exchange(server.base_url, code, redirect_uri, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:50003/other", "http://evil.example/callback", "http://localhost:50003/callback",
    "https://127.0.0.1:50003/callback", "http://127.0.0.1:50003/callback/../x",
])
def test_unregistered_redirect_is_refused_without_redirecting(server, redirect_uri):
    answer = httpx.get(server.base_url + "/authorize", params=_authorize_params(redirect_uri))
    assert answer.status_code == 400
    assert "location" not in answer.headers


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:1234/callback", "http://127.0.0.1:65000/callback", "http://[::1]:40000/callback", "jp.mamori.app:/oauth2redirect",
])
def test_loopback_any_port_and_app_scheme_accepted(server, redirect_uri):
    code, used, verifier = authorize_code(server, "ube-resident-2", redirect_uri=redirect_uri)
    assert used == redirect_uri
    assert _exchange(server.base_url, code, redirect_uri, verifier).status_code == 200


def test_exchange_must_repeat_the_exact_redirect_uri(server):
    code, _redirect_uri, verifier = authorize_code(server, "ube-resident-1", redirect_uri=REDIRECT.format(port=50010))
    other_port = _exchange(server.base_url, code, REDIRECT.format(port=50011), verifier)
    assert other_port.status_code == 400 and other_port.json()["error"] == "invalid_grant"


def test_refresh_rotation_and_reuse_revokes_the_family(server):
    first = login(server, "ube-resident-1")

    def refresh(token: str) -> httpx.Response:
        return httpx.post(server.base_url + "/token", data={"grant_type": "refresh_token", "refresh_token": token, "client_id": APP_CLIENT_ID})

    second = refresh(first["refresh_token"])
    assert second.status_code == 200
    rotated = second.json()["refresh_token"]
    assert rotated != first["refresh_token"]
    reused = refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # The reuse looked like theft: the newer token of the same family is dead too.
    assert refresh(rotated).status_code == 400
    # Other logins are unaffected.
    assert refresh(login(server, "ube-resident-1")["refresh_token"]).status_code == 200


def test_userinfo(server, auth):
    info = httpx.get(server.base_url + "/userinfo", headers=auth("aizu-resident-1"))
    assert httpx.post(server.base_url + "/userinfo", headers=auth("aizu-resident-1")).json() == info.json()
    assert info.status_code == 200
    assert info.json()["municipalityCode"] == "072028" and info.json()["name"] == "会津 太郎"
    bad = httpx.get(server.base_url + "/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]
    assert httpx.get(server.base_url + "/userinfo").status_code == 401


def test_server_log_has_no_tokens_codes_or_passwords(server):
    code, redirect_uri, verifier = authorize_code(server, "ube-resident-2")
    tokens = _exchange(server.base_url, code, redirect_uri, verifier).json()
    httpx.get(server.base_url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    httpx.post(server.base_url + "/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": APP_CLIENT_ID})
    log = server.log_text()
    assert "POST /token 200" in log  # the log is captured at all
    for secret in (code, verifier, tokens["access_token"][-40:], tokens["refresh_token"][:20], tokens["id_token"][-40:], DEMO_PASSWORD, "宇部 花子"):
        assert secret not in log


def test_password_guessing_is_paused(server):
    params = _authorize_params(REDIRECT.format(port=50020))
    guesses = [httpx.post(server.base_url + "/authorize", data={**params, "username": "guess-target", "password": f"pw{i}"}) for i in range(6)]
    assert [g.status_code for g in guesses] == [401] * 5 + [429]
    assert 0 < int(guesses[-1].headers["Retry-After"]) <= 60


def _refresh(server, token: str) -> httpx.Response:
    return httpx.post(server.base_url + "/token", data={"grant_type": "refresh_token", "refresh_token": token, "client_id": APP_CLIENT_ID})


def _alive(server, access_token: str) -> bool:
    """Whether an access token still works, at userinfo and at the NGSI-LD API."""
    headers = {"Authorization": f"Bearer {access_token}"}
    userinfo = httpx.get(server.base_url + "/userinfo", headers=headers).status_code
    ngsi = httpx.get(server.base_url + "/ngsi-ld/v1/entities", params={"type": "SafetyStatus"}, headers=headers).status_code
    assert (userinfo == 200) == (ngsi == 200) and {userinfo, ngsi} <= {200, 401}
    return userinfo == 200


def test_discovery_names_revocation_and_end_session(server):
    doc = httpx.get(server.base_url + "/.well-known/openid-configuration").json()
    assert doc["revocation_endpoint"] == server.issuer + "/revoke"
    assert doc["end_session_endpoint"] == server.issuer + "/logout"


@pytest.mark.parametrize("which", ["refresh_token", "access_token"])
def test_revocation_ends_the_whole_session(server, which):
    tokens, other = login(server, "ube-resident-1"), login(server, "ube-resident-1")
    rotated = _refresh(server, tokens["refresh_token"]).json()
    refused = httpx.post(server.base_url + "/revoke", data={"token": rotated[which], "client_id": "someone-else"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    answer = httpx.post(server.base_url + "/revoke", data={"token": rotated[which], "token_type_hint": which, "client_id": APP_CLIENT_ID})
    assert answer.status_code == 200
    assert _refresh(server, rotated["refresh_token"]).status_code == 400
    assert not _alive(server, rotated["access_token"]) and not _alive(server, tokens["access_token"])
    # Unknown tokens are fine (RFC 7009 §2.2); other sessions of the same account live on.
    assert httpx.post(server.base_url + "/revoke", data={"token": "nonsense", "client_id": APP_CLIENT_ID}).status_code == 200
    assert _alive(server, other["access_token"]) and _refresh(server, other["refresh_token"]).status_code == 200


def test_rp_initiated_logout_ends_the_session_and_returns_to_the_app(server):
    tokens = login(server, "ube-resident-2")
    back = "http://127.0.0.1:50999/callback"
    answer = httpx.get(server.base_url + "/logout", params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": back, "state": "s-9"})
    assert answer.status_code == 302 and answer.headers["location"] == back + "?state=s-9"
    assert not _alive(server, tokens["access_token"]) and _refresh(server, tokens["refresh_token"]).status_code == 400
    evil = httpx.get(server.base_url + "/logout", params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "http://evil.example/"})
    assert evil.status_code == 400 and "location" not in evil.headers
    assert httpx.post(server.base_url + "/logout", data={"id_token_hint": "x.y.z"}).status_code == 200


def test_a_replayed_code_revokes_the_tokens_it_issued(server):
    code, redirect_uri, verifier = authorize_code(server, "ube-resident-1")
    first = _exchange(server.base_url, code, redirect_uri, verifier).json()
    assert _alive(server, first["access_token"])
    replay = _exchange(server.base_url, code, redirect_uri, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert not _alive(server, first["access_token"]) and _refresh(server, first["refresh_token"]).status_code == 400


def test_debug_log_has_no_tokens(tmp_path):
    with run_cityos(tmp_path, extra_args=["--log-level", "debug"]) as debug_server:
        tokens = login(debug_server, "ube-resident-2")
        rotated = _refresh(debug_server, tokens["refresh_token"]).json()
        httpx.get(debug_server.base_url + "/userinfo", headers={"Authorization": f"Bearer {rotated['access_token']}"})
        log = debug_server.log_text()
    for secret in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"], rotated["access_token"], rotated["refresh_token"]):
        for part in (secret[:24], secret[-24:]):
            assert part not in log


def _guess(server, username: str, address: str, password: str = "wrong") -> int:
    params = _authorize_params(REDIRECT.format(port=50021))
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60) as client:
        return client.post(server.base_url + "/authorize", data={**params, "username": username, "password": password}).status_code


def test_parallel_guesses_cannot_race_the_throttle(server):
    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(lambda i: _guess(server, "race-target", "127.0.0.5", f"pw{i}"), range(40)))
    assert statuses.count(401) == 5 and statuses.count(429) == 35


def test_spraying_from_one_address_is_paused_and_lockout_is_per_address(server):
    statuses = [_guess(server, f"spray-{i}", "127.0.0.6") for i in range(32)]
    assert statuses[:30] == [401] * 30 and statuses[30:] == [429, 429]
    assert _guess(server, "ube-resident-1", "127.0.0.6", DEMO_PASSWORD) == 429
    # An attacker's failures at one address do not lock the owner out elsewhere.
    assert [_guess(server, "ube-resident-2", "127.0.0.7") for _ in range(6)] == [401] * 5 + [429]
    assert _guess(server, "ube-resident-2", "127.0.0.8", DEMO_PASSWORD) == 302


@pytest.mark.parametrize("field", ["response_type", "redirect_uri", "state", "code_challenge"])
@pytest.mark.parametrize("text", ["\x00", "a\nb", "大雨", "\x7f", '"', "\\"])
def test_authorize_refuses_control_and_non_ascii_parameters_without_redirecting(server, field, text):
    params = _authorize_params(REDIRECT.format(port=50022))
    params[field] = params[field] + text
    for answer in (httpx.get(server.base_url + "/authorize", params=params),
                   httpx.post(server.base_url + "/authorize", data={**params, "username": "ube-resident-1", "password": DEMO_PASSWORD})):
        assert answer.status_code == 400 and "location" not in answer.headers
        assert answer.json()["error"] == "invalid_request" and field in answer.json()["error_description"]
