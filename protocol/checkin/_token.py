"""The two QR payloads of check-in, and their strict parsers.

Evacuee QR ("MC1:" + base45, QR alphanumeric mode) — fixed binary layout, no field names, so a
household card fits a QR a cheap camera reads off a phone screen::

    version 1 | device kid 8 | issued_at u32 | ttl u16 | nonce 12 | seal kid 4 | sealed card | sig 64

The Ed25519 signature covers every byte before it; the sealed card's AEAD also authenticates the
header, so neither part can be swapped into another token. The card inside the box is deflated.

Shelter poster QR ("MS1:" + base45): CBOR [1, poster kid, shelter id, municipality code, name,
valid_from, valid_until] followed by the platform's Ed25519 signature.
"""
from __future__ import annotations

import os
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any

import base45
import cbor2
from cryptography.exceptions import InvalidSignature

from protocol.checkin._card import EvacueeCard, card_from_bytes, card_to_bytes
from protocol.checkin._crypto import Ed25519PrivateKey, X25519PrivateKey, X25519PublicKey, seal, unseal
from protocol.checkin._errors import (
    BadSignature,
    Expired,
    InvalidCard,
    MalformedToken,
    NotACheckinQr,
    NotYetValid,
    UnknownSigner,
    WrongRecipient,
)
from protocol.checkin._keys import KeyDirectory, device_kid, poster_kid, seal_kid

EVACUEE_PREFIX = "MC1:"
POSTER_PREFIX = "MS1:"
_HEADER = struct.Struct(">B8sIH12s4s")
_VERSION = 1
_SIG = 64
_MIN_EVACUEE = _HEADER.size + 48 + _SIG
MAX_TTL_S = 3600  # a QR older than this is refused even if it claims a longer life
CLOCK_SKEW_S = 300  # phones' clocks drift; tolerate five minutes either way
_MAX_CARD_BYTES = 16384  # inflate limit: a card is ~300 bytes, so this stops zip bombs
_MAX_QR_TEXT = 4296  # the most a QR code (version 40-L, alphanumeric) can hold


@dataclass(frozen=True, slots=True)
class EvacueeToken:
    """A parsed (not yet verified) evacuee QR."""

    device_kid: bytes
    issued_at: int
    ttl_s: int
    nonce: bytes
    seal_kid: bytes
    header: bytes
    sealed: bytes
    signature: bytes

    @property
    def expires_at(self) -> int:
        return self.issued_at + self.ttl_s


@dataclass(frozen=True, slots=True)
class ShelterPoster:
    """A verified shelter entrance poster."""

    shelter_id: str
    municipality_code: str
    shelter_name: str
    valid_from: int
    valid_until: int


def _b45decode(text: str, prefix: str, kind: str) -> bytes:
    if not isinstance(text, str) or len(text) > _MAX_QR_TEXT:
        raise MalformedToken(f"{kind} QR text is missing or too long")
    if not text.startswith(prefix):
        other = POSTER_PREFIX if prefix == EVACUEE_PREFIX else EVACUEE_PREFIX
        hint = " (a shelter poster)" if text.startswith(other) and kind == "evacuee" else ""
        hint = " (an evacuee's QR)" if text.startswith(other) and kind == "poster" else hint
        raise NotACheckinQr(f"this QR is not a {kind} check-in code{hint}")
    try:
        return base45.b45decode(text[len(prefix):])
    except (ValueError, KeyError, IndexError):
        raise MalformedToken(f"{kind} QR text is not valid base45") from None


# --- evacuee QR ---------------------------------------------------------------------------

# Preset deflate dictionary (part of format version 1: never edit, add a version instead):
# words that recur on cards, in the card's cp932 text encoding, so short cards compress too.
_PREFECTURES = ("北海道青森県岩手県宮城県秋田県山形県福島県茨城県栃木県群馬県埼玉県千葉県東京都神奈川県新潟県"
                "富山県石川県福井県山梨県長野県岐阜県静岡県愛知県三重県滋賀県京都府大阪府兵庫県奈良県和歌山県"
                "鳥取県島根県岡山県広島県山口県徳島県香川県愛媛県高知県福岡県佐賀県長崎県熊本県大分県宮崎県"
                "鹿児島県沖縄県")
_DEFLATE_DICT = (_PREFECTURES + "市区町村郡丁目番地号大字字卵乳小麦そば落花生えびかにくるみ"
                 "補聴器車いす視覚聴覚犬猫小型").encode("cp932")


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _DEFLATE_DICT)
    return c.compress(data) + c.flush()


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj(-15, _DEFLATE_DICT)
    try:
        out = d.decompress(data, _MAX_CARD_BYTES)
    except zlib.error:
        raise InvalidCard("card data is not valid deflate") from None
    if d.unconsumed_tail or not d.eof:
        raise InvalidCard("card data is truncated or too large")
    return out


def make_evacuee_token(card: EvacueeCard, device_key: Ed25519PrivateKey, shelter_key: X25519PublicKey,
                       *, ttl_s: int = 600, now: float | None = None) -> str:
    """Sign a fresh, short-lived QR text carrying ``card`` sealed to ``shelter_key``."""
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be 1..{MAX_TTL_S}")
    issued = int(time.time() if now is None else now)
    header = _HEADER.pack(_VERSION, device_kid(device_key.public_key()), issued, ttl_s,
                          os.urandom(12), seal_kid(shelter_key))
    body = header + seal(shelter_key, _deflate(card_to_bytes(card)), header)
    return EVACUEE_PREFIX + base45.b45encode(body + device_key.sign(body)).decode("ascii")


def parse_evacuee_token(text: str) -> EvacueeToken:
    """Split the QR text into its fields; checks shape only (see ``verify_evacuee_token``)."""
    raw = _b45decode(text, EVACUEE_PREFIX, "evacuee")
    if len(raw) < _MIN_EVACUEE:
        raise MalformedToken("evacuee QR is too short")
    version, kid, issued, ttl, nonce, skid = _HEADER.unpack_from(raw)
    if version != _VERSION:
        raise MalformedToken(f"evacuee QR version {version} is not supported")
    return EvacueeToken(kid, issued, ttl, nonce, skid, raw[:_HEADER.size],
                        raw[_HEADER.size:-_SIG], raw[-_SIG:])


def verify_evacuee_token(token: EvacueeToken, keys: KeyDirectory, now: float) -> None:
    """Signature, then validity window. Raises a typed error; returns only when all hold."""
    public = keys.device_key(token.device_kid)
    if public is None:
        raise UnknownSigner("this phone's key is not registered (or was revoked)")
    try:
        public.verify(token.signature, token.header + token.sealed)
    except InvalidSignature:
        raise BadSignature("evacuee QR signature does not match: forged or altered") from None
    if token.ttl_s == 0 or token.ttl_s > MAX_TTL_S:
        raise MalformedToken("evacuee QR claims an invalid lifetime")
    if token.issued_at > now + CLOCK_SKEW_S:
        raise NotYetValid("evacuee QR was issued in the future: check the phone's clock")
    if now > token.expires_at + CLOCK_SKEW_S:
        raise Expired("evacuee QR has expired: ask for a fresh one")


def open_evacuee_card(token: EvacueeToken, shelter_keys: dict[bytes, X25519PrivateKey]) -> EvacueeCard:
    """Unseal and decode the card with the desk's private shelter key(s), by key id."""
    private = shelter_keys.get(token.seal_kid)
    if private is None:
        raise WrongRecipient("this QR is sealed to another municipality's (or a retired) key")
    return card_from_bytes(_inflate(unseal(private, token.sealed, token.header)))


def seal_kid_map(private_keys: list[X25519PrivateKey]) -> dict[bytes, X25519PrivateKey]:
    return {seal_kid(k.public_key()): k for k in private_keys}


# --- shelter poster QR ---------------------------------------------------------------------

def make_poster_token(signing_key: Ed25519PrivateKey, shelter_id: str, municipality_code: str,
                      shelter_name: str, valid_from: int, valid_until: int) -> str:
    """What the platform prints at a shelter entrance (here for tests, tools and the platform)."""
    body = cbor2.dumps([_VERSION, poster_kid(signing_key.public_key()), shelter_id, municipality_code,
                        shelter_name, int(valid_from), int(valid_until)])
    return POSTER_PREFIX + base45.b45encode(body + signing_key.sign(body)).decode("ascii")


def _poster_fields(body: bytes) -> list[Any]:
    try:
        fields = cbor2.loads(body)
    except Exception:  # cbor2 raises many types on garbage
        raise MalformedToken("shelter poster QR content is not valid") from None
    types = (int, bytes, str, str, str, int, int)
    if (not isinstance(fields, list) or len(fields) != len(types)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(fields, types, strict=True))):
        raise MalformedToken("shelter poster QR has the wrong fields")
    if fields[0] != _VERSION:
        raise MalformedToken(f"shelter poster version {fields[0]} is not supported")
    if not fields[2] or len(fields[2]) > 64 or not (len(fields[3]) == 6 and fields[3].isdigit()):
        raise MalformedToken("shelter poster names no valid shelter id / 6-digit municipality code")
    return fields


def verify_poster(text: str, keys: KeyDirectory, now: float) -> ShelterPoster:
    raw = _b45decode(text, POSTER_PREFIX, "poster")
    if len(raw) <= _SIG:
        raise MalformedToken("shelter poster QR is too short")
    body, sig = raw[:-_SIG], raw[-_SIG:]
    _, kid, shelter_id, municipality, name, valid_from, valid_until = _poster_fields(body)
    public = keys.poster_key(kid)
    if public is None:
        raise UnknownSigner("this poster is not signed by a key the app knows")
    try:
        public.verify(sig, body)
    except InvalidSignature:
        raise BadSignature("shelter poster signature does not match: forged or altered") from None
    if now < valid_from - CLOCK_SKEW_S:
        raise NotYetValid("this shelter poster is not valid yet")
    if now > valid_until + CLOCK_SKEW_S:
        raise Expired("this shelter poster has expired")
    return ShelterPoster(shelter_id, municipality, name[:120], valid_from, valid_until)
