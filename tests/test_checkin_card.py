"""Evacuee card model, compact encoding, encryption at rest, and QR size."""
from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import base45
import pytest

from app.checkin import (
    CardMember,
    CardVault,
    EvacueeCard,
    InvalidCard,
    NoShelterKey,
    VaultKeyError,
    card_from_bytes,
    card_to_bytes,
    new_at_rest_key,
    show_qr,
)
from bench.checkin import example_household
from offline.store import open_store
from tests.test_checkin_world import MUNICIPALITY, make_world


def test_card_round_trips_through_the_compact_encoding() -> None:
    card = example_household()
    assert card_from_bytes(card_to_bytes(card)) == card


@pytest.mark.parametrize("text", ["アイヅ タロウ", "𠮷田 はな", "José García", "ｱｲﾂﾞ", "カ\u3099", "髙橋",
                                  "Nguyễn Văn A"])
def test_any_text_round_trips_exactly(text: str) -> None:
    card = EvacueeCard(members=(CardMember(text, kana=text),), address=text)
    back = card_from_bytes(card_to_bytes(card))
    assert (back.members[0].name, back.members[0].kana, back.address) == (text, text, text)


@pytest.mark.parametrize("bad", [
    dict(members=()),
    dict(members=(CardMember(""),)),
    dict(members=(CardMember("a" * 41),)),
    dict(address="x\x00y"),
    dict(pets=-1),
    dict(card_id=b"short"),
])
def test_invalid_cards_are_refused_with_a_reason(bad: dict) -> None:
    with pytest.raises(InvalidCard) as err:
        replace(example_household(), **bad)
    assert err.value.key == "checkin.error.invalid_card" and str(err.value)


def test_infants_are_counted_from_birth_date() -> None:
    baby = CardMember("さくら", birth_date=date(2024, 1, 10))
    assert baby.is_infant_on(date(2026, 1, 9)) and not baby.is_infant_on(date(2027, 1, 10))
    assert not CardMember("x").is_infant_on(date(2026, 1, 1))


def test_vault_keeps_no_plaintext_and_needs_the_right_key(tmp_path: Path) -> None:
    path = tmp_path / "phone.sqlite"
    key = new_at_rest_key()
    card = example_household()
    CardVault(open_store(path), key).save(card)
    assert CardVault(open_store(path), key).load() == card
    for f in tmp_path.iterdir():  # database, WAL and shared-memory files
        raw = f.read_bytes()
        for needle in ("会津".encode(), "会津".encode("cp932"), "アイヅ".encode(), b"0242-39-1111", "降圧剤".encode()):
            assert needle not in raw, f"{needle!r} in {f.name}"
    with pytest.raises(VaultKeyError):
        CardVault(open_store(path), new_at_rest_key()).load()
    with pytest.raises(VaultKeyError):
        CardVault(open_store(path), b"short").load()


def test_typical_household_qr_is_at_most_version_15_m() -> None:
    w = make_world()
    qr = show_qr(example_household(), w.device, w.keys, MUNICIPALITY)
    assert qr.qr.designator.endswith("-M")
    assert qr.version <= 15 and qr.modules == 17 + 4 * qr.version
    assert qr.text.startswith("MC1:") and len(qr.png()) > 1000


def test_seal_hides_personal_data_from_other_scanners() -> None:
    w = make_world()
    raw = base45.b45decode(show_qr(example_household(), w.device, w.keys, MUNICIPALITY).text[4:])
    for needle in ("会津".encode("cp932"), "ｱｲﾂﾞ".encode("cp932"), b"0242", "降圧剤".encode("cp932")):
        assert needle not in raw


def test_no_qr_before_the_municipality_key_is_known() -> None:
    w = make_world()
    with pytest.raises(NoShelterKey) as err:
        show_qr(example_household(), w.device, w.keys, "999999")
    assert err.value.key == "checkin.error.no_shelter_key"
