"""Family invites: a signed, short-lived text shown as a QR code (or shared as text).

    MF1:<base64url(JSON payload)>.<base64url(Ed25519 signature over the payload bytes)>

The group's invite key is made on the inviting phone and its public half registered with the
platform when the group is created, so a phone can make an invite with no network (a QR shown
face to face in a shelter) and the platform, which holds the public key, is the one that admits
the new member. Each invite carries a random nonce: the platform admits it once.
"""
from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from protocol.family._errors import (
    InviteExpired,
    InviteForged,
    InviteMalformed,
    InviteReused,
)

INVITE_PREFIX = "MF1:"
DEFAULT_TTL_S = 15 * 60
MAX_TTL_S = 24 * 3600  # an invite claiming a longer life is refused
CLOCK_SKEW_S = 300  # phones' clocks drift; tolerate five minutes
MAX_TEXT = 1024
_GROUP_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_NONCE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class Invite:
    """The content of an invite. From ``parse_invite`` it is unverified: a preview only."""

    group_id: str
    group_name: str
    inviter_name: str
    issued_at: int
    expires_at: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise InviteMalformed("invite text has characters that are not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InviteMalformed("invite text is not valid base64url") from None


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw public key, base64url: what the platform stores for the group."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return _b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def public_key_from_text(text: str) -> Ed25519PublicKey:
    raw = _unb64(text) if isinstance(text, str) else b""
    if len(raw) != 32:
        raise InviteMalformed("a group invite key must be 32 bytes (Ed25519), base64url")
    return Ed25519PublicKey.from_public_bytes(raw)


def make_invite(key: Ed25519PrivateKey, group_id: str, group_name: str, inviter_name: str,
                *, ttl_s: int = DEFAULT_TTL_S, now: float | None = None) -> str:
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be 1..{MAX_TTL_S}, got {ttl_s}")
    if not _GROUP_ID.match(group_id):
        raise ValueError("group_id must be 8-64 letters, digits, '-' or '_'")
    issued = int(time.time() if now is None else now)
    payload = {"v": 1, "g": group_id, "n": group_name[:60], "i": inviter_name[:60], "iat": issued,
               "exp": issued + ttl_s, "nonce": os.urandom(16).hex()}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return f"{INVITE_PREFIX}{_b64(body)}.{_b64(key.sign(body))}"


def _split(text: object) -> tuple[bytes, bytes]:
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise InviteMalformed("invite text is missing or too long")
    text = text.strip()
    if not text.startswith(INVITE_PREFIX):
        raise InviteMalformed("this is not a Mamori family invite")
    body, dot, sig = text[len(INVITE_PREFIX):].partition(".")
    if not dot:
        raise InviteMalformed("invite text is cut off (no signature)")
    return _unb64(body), _unb64(sig)


def _fields(body: bytes) -> Invite:
    try:
        p = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InviteMalformed("invite content is not readable") from None
    if not isinstance(p, dict) or p.get("v") != 1:
        raise InviteMalformed("invite version is not supported")
    ints = [p.get(k) for k in ("iat", "exp")]
    strs = [p.get(k) for k in ("g", "n", "i", "nonce")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or not all(isinstance(v, str) for v in strs):
        raise InviteMalformed("invite has missing or mistyped fields")
    if not _GROUP_ID.match(p["g"]) or not _NONCE.match(p["nonce"]):
        raise InviteMalformed("invite names no valid group or nonce")
    return Invite(p["g"], p["n"][:60], p["i"][:60], p["iat"], p["exp"], p["nonce"])


def parse_invite(text: str) -> Invite:
    """Shape only, for a preview ("join 宇部家, invited by 一郎?"); the platform verifies."""
    body, _ = _split(text)
    return _fields(body)


def verify_invite(text: str, public_key: Ed25519PublicKey, now: float, already_used: Callable[[str], bool]) -> Invite:
    """Signature, then lifetime, then single use. Raises a typed error; returns only when all hold."""
    body, sig = _split(text)
    try:
        public_key.verify(sig, body)
    except InvalidSignature:
        raise InviteForged("the invite's signature does not match this group: forged or altered") from None
    invite = _fields(body)
    if invite.expires_at <= invite.issued_at or invite.expires_at - invite.issued_at > MAX_TTL_S:
        raise InviteMalformed("the invite claims an invalid lifetime")
    if invite.issued_at > now + CLOCK_SKEW_S:
        raise InviteMalformed("the invite was issued in the future: check the inviting phone's clock")
    if now > invite.expires_at + CLOCK_SKEW_S:
        raise InviteExpired("the invite has expired: ask for a new one")
    if already_used(invite.nonce):
        raise InviteReused("this invite was already used: each invite admits one person once")
    return invite
