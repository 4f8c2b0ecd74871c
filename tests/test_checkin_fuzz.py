"""Robustness: the token parser, unsealer and card decoder under random and mutated input, and a
corpus of broken images. Only typed ``CheckinError``s may come out, and nothing is half-recorded."""
from __future__ import annotations

import io
import os
import struct
import zlib

import base45
import cbor2
import numpy as np
import pytest
import segno
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.checkin import (
    CheckinError,
    InvalidCard,
    MalformedToken,
    NoQrFound,
    NotACheckinQr,
    ResidentCheckins,
    card_from_bytes,
    card_to_bytes,
    show_qr,
)
from bench.checkin import example_household
from protocol.checkin import seal
from protocol.checkin._token import _HEADER, _deflate
from tests.test_checkin_desk import _counts
from tests.test_checkin_world import MUNICIPALITY, World, make_world

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _signed_garbage(w: World, sealed_plain: bytes, kid_ok: bool = True) -> str:
    """A correctly signed, correctly sealed token whose card bytes are garbage: reaches the decoder."""
    from app.checkin import device_kid, seal_kid

    header = _HEADER.pack(1, device_kid(w.device.public_key()), int(w.now[0]), 600, os.urandom(12),
                          seal_kid(w.shelter_key.public_key()) if kid_ok else b"\0\0\0\0")
    body = header + seal(w.shelter_key.public_key(), sealed_plain, header)
    return "MC1:" + base45.b45encode(body + w.device.sign(body)).decode()


def _xor(data: bytes, edits: list[tuple[int, int]]) -> bytearray:
    """Flip bits at the given positions; one edit per position, so edits never cancel out."""
    out = bytearray(data)
    for pos, x in {pos % len(out): x for pos, x in edits}.items():
        out[pos] ^= x
    return out


def _mutate(text: str, edits: list[tuple[int, int]]) -> str:
    raw = base45.b45decode(text[4:])
    return text[:4] + base45.b45encode(bytes(_xor(raw, edits))).decode()


def test_fuzz_token_parser_unsealer_and_card_decoder_2000_cases() -> None:
    w = make_world()
    desk = w.desk()
    me = ResidentCheckins(w.db, w.keys)
    valid = show_qr(example_household(), w.device, w.keys, MUNICIPALITY, now=w.now[0]).text
    poster = w.poster()
    edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4)
    inputs = st.one_of(
        st.text(max_size=300),
        st.text(alphabet=B45, max_size=700).map(lambda s: "MC1:" + s),
        st.binary(max_size=500).map(lambda b: "MC1:" + base45.b45encode(b).decode()),
        st.binary(max_size=300).map(lambda b: "MS1:" + base45.b45encode(b).decode()),
        edits.map(lambda e: _mutate(valid, e)),
        edits.map(lambda e: _mutate(poster, e)),
        st.binary(max_size=400).map(lambda b: _signed_garbage(w, b)),
        st.binary(max_size=400).map(lambda b: _signed_garbage(w, _deflate(b))),
        st.just(_signed_garbage(w, zlib.compress(b"\0" * 1_000_000)[2:-4])),  # an inflate bomb
    )
    before = _counts(w)
    cases: list[str] = []

    @settings(max_examples=2500, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inputs)
    def run(text: str) -> None:
        cases.append(text)
        with pytest.raises(CheckinError):
            desk.check_in_text(text)
        with pytest.raises(CheckinError):
            me.check_in(text, example_household(), now=w.now[0])

    run()
    assert len(set(cases)) >= 2000
    assert _counts(w) == before and me.pending() == []


_CARD = card_to_bytes(example_household())


@settings(max_examples=400, deadline=None, database=None, derandomize=True)
@given(st.one_of(
    st.binary(max_size=400),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=6).map(
        lambda e: bytes(_xor(_CARD, e))),
    st.builds(cbor2.dumps, st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.binary(max_size=20),
        lambda inner: st.lists(inner, max_size=12), max_leaves=60)),
))
def test_card_decoder_gives_a_whole_card_or_invalid_card(data: bytes) -> None:
    """Mutated cards may still be valid cards (a changed letter): then they must round-trip."""
    try:
        card = card_from_bytes(data)
    except InvalidCard:
        return
    assert card_from_bytes(card_to_bytes(card)) == card


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _qr_png(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make_qr(text, error="m").save(buf, kind="png", scale=4)
    return buf.getvalue()


def _huge_header_png() -> bytes:
    """A valid-looking PNG header that claims 60000 x 60000 pixels."""
    data = bytearray(_png(Image.new("L", (4, 4), 255)))
    ihdr = struct.pack(">II", 60000, 60000) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_malformed_image_corpus_never_crashes_or_records() -> None:
    w = make_world()
    desk = w.desk()
    rng = np.random.default_rng(5)
    good = _qr_png(show_qr(example_household(), w.device, w.keys, MUNICIPALITY, now=w.now[0]).text)
    damaged = Image.open(io.BytesIO(good)).convert("L")
    damaged.paste(0, (40, 40, 200, 200))
    corpus: list[tuple[object, type[CheckinError]]] = [
        (b"", NoQrFound), (b"not an image at all", NoQrFound), (good[:len(good) // 2], NoQrFound),
        (good[:60], NoQrFound), (b"\x89PNG\r\n\x1a\n" + os.urandom(200), NoQrFound), (b"\xff\xd8\xff\xe0", NoQrFound),
        (_huge_header_png(), NoQrFound), (_png(Image.new("L", (640, 480), 255)), NoQrFound),
        (_png(Image.new("RGB", (1, 1))), NoQrFound), (_png(damaged), NoQrFound),
        (_png(Image.fromarray(rng.integers(0, 256, (480, 640), dtype=np.uint8))), NoQrFound),
        (Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)), NoQrFound),
        (rng.random((100, 100)), NoQrFound), (np.zeros((0, 0), np.uint8), NoQrFound),
        (np.zeros((10, 10, 7), np.uint8), NoQrFound), (object(), NoQrFound), ("/nonexistent/x.png", NoQrFound),
        (_qr_png("https://example.org/"), NotACheckinQr), (_qr_png(w.poster()), NotACheckinQr),
        (_qr_png("MC1:" + base45.b45encode(os.urandom(150)).decode()), MalformedToken),
        (_qr_png("MC1:" + base45.b45encode(os.urandom(20)).decode()), MalformedToken),
    ]
    before = _counts(w)
    for image, error in corpus:
        with pytest.raises(error):
            desk.check_in_image(image)  # type: ignore[arg-type]
    assert _counts(w) == before
