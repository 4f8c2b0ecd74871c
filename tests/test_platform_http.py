"""The platform HTTP layer against a real provider and resource on loopback: bearer auth,
one refresh and one retry on 401 (once for many concurrent requests, never reusing a
rotated refresh token), one long-lived connection, and the error mapping."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from app.identity import MemoryTokenStore, Session
from app.platform import (
    BearerAuth,
    NotAuthorised,
    PlatformHttp,
    PlatformUnavailable,
    RateLimited,
    Refused,
    ServerError,
)
from tests.oidc_issuer import CLIENT_ID, IssuerState, browser, run_issuer


@pytest.fixture()
def issuer() -> Iterator[IssuerState]:
    with run_issuer("ES256") as state:
        yield state


@pytest.fixture()
def session(issuer: IssuerState) -> Session:
    session = Session(issuer.base_url, CLIENT_ID, MemoryTokenStore())
    session.login(open_browser=browser, timeout=20)
    return session


def test_concurrent_401s_refresh_once_and_every_request_is_retried(issuer, session) -> None:
    http = PlatformHttp(issuer.base_url, auth=session.auth)
    assert http.json("GET", "/api/echo", "echo") == {"ok": True}
    issuer.access.clear()  # the platform no longer accepts the token the app holds
    start, results, errors = threading.Barrier(8), [], []

    def call() -> None:
        start.wait()
        try:
            results.append(http.json("GET", "/api/echo", "echo"))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and results == [{"ok": True}] * 8
    assert issuer.refreshes == 1 and issuer.refused_refreshes == 0 and not issuer.revoked_chains
    assert session.refresh()  # the rotated chain is still alive
    http.close()


def test_a_401_that_survives_the_refresh_is_retried_exactly_once(issuer, session) -> None:
    with PlatformHttp(issuer.base_url, auth=session.auth) as http:
        issuer.access.clear()
        issuer.refresh.clear()  # the provider forgot the refresh token: the refresh is refused
        with pytest.raises(NotAuthorised) as refused:
            http.call("GET", "/api/echo", "echo")
        assert refused.value.status == 401 and not refused.value.retryable
        assert issuer.echo_hits == 1  # no retry without a new token
        assert not session.logged_in  # refused refresh: logged out


def test_no_retry_storm_when_the_new_token_is_refused_too(issuer, session) -> None:
    class Stale:
        """Credentials whose refresh hands out a token the platform also refuses."""

        def access_token(self) -> str:
            return "stale"

        def refresh_after_rejection(self) -> str:
            return "also-stale"

    with PlatformHttp(issuer.base_url, auth=BearerAuth(Stale())) as http, pytest.raises(NotAuthorised):
        http.call("GET", "/api/echo", "echo")
    assert issuer.echo_hits == 2  # the request and exactly one retry


def test_logged_out_requests_carry_no_token(issuer) -> None:
    anonymous = Session(issuer.base_url, CLIENT_ID, MemoryTokenStore())
    with PlatformHttp(issuer.base_url, auth=anonymous.auth) as http, pytest.raises(NotAuthorised):
        http.call("GET", "/api/echo", "echo")
    assert issuer.echo_hits == 1 and issuer.refreshes == 0


def test_one_long_lived_connection_per_link_until_close(issuer, session) -> None:
    http = PlatformHttp(issuer.base_url, auth=session.auth)
    issuer.peers.clear()
    for _ in range(20):
        http.json("GET", "/api/echo", "echo")
    assert len(issuer.peers) == 1  # twenty calls, one TCP connection
    http.close()  # logout: the connections end
    http.json("GET", "/api/echo", "echo")
    assert len(issuer.peers) == 2
    http.close()


@pytest.mark.parametrize(("path", "error", "retryable", "retry_after"), [
    ("/api/status/400", Refused, False, None),
    ("/api/status/403", Refused, False, None),
    ("/api/status/408", Refused, True, None),
    ("/api/status/429?retry_after=7", RateLimited, True, 7.0),
    ("/api/status/500", ServerError, True, None),
    ("/api/status/503?retry_after=Wed,%2021%20Oct%202015%2007:28:00%20GMT", ServerError, True, 0.0),
])
def test_error_answers_map_to_typed_errors(issuer, path, error, retryable, retry_after) -> None:
    with PlatformHttp(issuer.base_url) as http, pytest.raises(error) as raised:
        http.call("GET", path, "test step")
    err = raised.value
    assert (err.retryable, err.retry_after, err.problem_type, err.detail) == (
        retryable, retry_after, "urn:test:problem", "asked for it")
    assert str(err).startswith(f"test step: HTTP {err.status} Test problem")


def test_problem_code_is_kept(issuer) -> None:
    with PlatformHttp(issuer.base_url) as http, pytest.raises(Refused) as raised:
        http.call("GET", "/api/status/409?code=no_vehicle", "ride booking")
    assert raised.value.code == "no_vehicle" and raised.value.status == 409


def test_no_answer_at_all_is_unavailable_and_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with PlatformHttp(f"http://127.0.0.1:{port}", timeout=2) as http, pytest.raises(PlatformUnavailable) as raised:
        http.call("GET", "/anything", "ping")
    assert raised.value.retryable and "platform unreachable" in str(raised.value)
