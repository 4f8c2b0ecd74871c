"""ID-token signature algorithms: the client accepts whatever asymmetric algorithm the
provider's discovery lists (and joserfc implements), and nothing else. Each case logs in
end to end against a real OpenID provider on loopback with a freshly generated real key."""
from __future__ import annotations

import pytest
from joserfc.jwk import OKPKey

from app.identity import IDENTITY_KEY, TOKENS_KEY, LoginError, MemoryTokenStore, Session, id_token_algorithms
from tests.oidc_issuer import CLIENT_ID, SUB, browser, generate_key, run_issuer

FAMILIES = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]
EVERY = [*FAMILIES, "HS256", "none"]


@pytest.mark.parametrize("alg", FAMILIES)
def test_login_verifies_an_id_token_signed_with(alg: str) -> None:
    with run_issuer(alg, advertised=EVERY) as issuer:
        session = Session(issuer.base_url, CLIENT_ID, MemoryTokenStore())
        claims = session.login(open_browser=browser, timeout=20)
        assert claims["sub"] == SUB and claims["aud"] == CLIENT_ID
        assert session.logged_in
        assert alg in session.metadata.id_token_algorithms


def test_eddsa_with_an_ed448_key() -> None:
    with run_issuer("EdDSA", key=OKPKey.generate_key("Ed448")) as issuer:
        session = Session(issuer.base_url, CLIENT_ID, MemoryTokenStore())
        assert session.login(open_browser=browser, timeout=20)["sub"] == SUB


@pytest.mark.parametrize(("signed", "advertised"), [
    ("RS256", ["ES256"]),  # a valid signature, but not with an algorithm the provider announced
    ("ES256", ["RS256", "PS256"]),
    ("HS256", ["HS256", "RS256"]),  # a public client has no shared secret: never HMAC
])
def test_id_token_with_an_algorithm_outside_the_accepted_set_is_refused(signed: str, advertised: list[str]) -> None:
    with run_issuer(signed, advertised=advertised) as issuer:
        store = MemoryTokenStore()
        session = Session(issuer.base_url, CLIENT_ID, store)
        with pytest.raises(LoginError, match="ID token rejected"):
            session.login(open_browser=browser, timeout=20)
        assert store.get(TOKENS_KEY) is None and not session.logged_in


def test_provider_with_only_unverifiable_algorithms_is_refused_at_discovery() -> None:
    with run_issuer("HS256", advertised=["HS256", "none"]) as issuer:
        session = Session(issuer.base_url, CLIENT_ID, MemoryTokenStore())
        with pytest.raises(LoginError, match="no algorithm this app can verify"):
            session.login(open_browser=browser, timeout=20)


def test_accepted_set_is_what_discovery_lists_minus_hmac_and_none() -> None:
    assert id_token_algorithms(["ES512", "HS512", "none", "PS384", "XX999"]) == ("ES512", "PS384")
    assert id_token_algorithms(None) == ("RS256",)  # OpenID Connect Discovery's default
    assert id_token_algorithms("RS256") == () and id_token_algorithms([{"alg": "RS256"}, 7]) == ()  # malformed


def test_identity_is_kept_for_offline_use_and_dropped_on_logout() -> None:
    with run_issuer("ES384", key=generate_key("ES384")) as issuer:
        store = MemoryTokenStore()
        session = Session(issuer.base_url, CLIENT_ID, store)
        session.login(open_browser=browser, timeout=20)
        assert session.last_identity is None  # not asked yet
        identity = session.identity()
        assert (identity.sub, identity.municipality) == (SUB, "352021") and identity.has_role("shelter_staff")
    # The provider is gone: the roles are still known.
    offline = Session(issuer.base_url, CLIENT_ID, store)
    assert offline.last_identity == identity
    offline.logout()
    assert store.get(IDENTITY_KEY) is None and offline.last_identity is None
