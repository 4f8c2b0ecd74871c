"""Identity pieces that need no provider: PKCE maths, token storage, the install key."""
from __future__ import annotations

import base64
import hashlib
import re

import pytest

from app.identity import (
    MemoryTokenStore,
    Tokens,
    code_challenge,
    install_key,
    pkce_pair,
)


def test_rfc7636_appendix_b_vector():
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_pairs_are_fresh_valid_and_s256():
    pairs = {pkce_pair() for _ in range(50)}
    assert len(pairs) == 50
    for verifier, challenge in pairs:
        assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier)
        digest = base64.urlsafe_b64decode(challenge + "=")
        assert digest == hashlib.sha256(verifier.encode()).digest()


def test_verifier_length_is_checked():
    with pytest.raises(ValueError, match=r"43\.\.128"):
        code_challenge("short")


def test_install_key_is_created_once_and_kept():
    store = MemoryTokenStore()
    key = install_key(store)
    assert len(key) == 32 and install_key(store) == key
    store.set("mamori.outbox.key", base64.b64encode(b"x" * 5).decode())
    with pytest.raises(ValueError, match="256-bit"):
        install_key(store)


def test_tokens_never_show_in_repr():
    tokens = Tokens("secret-access", 1.0, "secret-refresh", "secret-id")
    assert "secret" not in repr(tokens)
    assert Tokens.from_json(tokens.to_json()) == tokens
