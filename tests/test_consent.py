"""Consent ledger: choices, history, outbox purge on revoke, i18n texts for every key."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from app.consent import USES, Consents, DataCategory
from offline.outbox import ConsentRequired, Outbox
from offline.store import open_store
from protocol.entities import make_entity

I18N = Path(__file__).resolve().parent.parent / "assets" / "i18n"


@pytest.fixture()
def consents(tmp_path):
    db = open_store(tmp_path / "m.db")
    holder: dict = {}
    box = Outbox(db, os.urandom(32), lambda c: holder["c"].ledger.is_granted(c))
    holder["c"] = Consents(db, box)
    yield holder["c"], box
    db.close()


def test_everything_starts_revoked(consents):
    c, _ = consents
    assert [(ch.category, ch.granted) for ch in c.ledger.choices()] == [(cat, False) for cat in DataCategory]


def test_grant_revoke_history_and_queue(consents):
    c, box = consents
    assert c.grant(DataCategory.SAFETY_STATUS)
    assert not c.grant(DataCategory.SAFETY_STATUS)  # no duplicate event
    box.enqueue("safety_status", make_entity("SafetyStatus", "p1", "352021", status="safe"))
    box.enqueue("safety_status", make_entity("SafetyStatus", "p2", "352021", status="injured"))
    assert c.revoke(DataCategory.SAFETY_STATUS)
    ops = [(w.op, w.body.get("action")) for w in box.pending(10)]
    assert ops == [("consent", "grant"), ("consent", "revoke")]  # data purged, registry told
    assert [e.action for e in c.ledger.history(DataCategory.SAFETY_STATUS)] == ["grant", "revoke"]
    with pytest.raises(ConsentRequired):
        box.enqueue("safety_status", make_entity("SafetyStatus", "p3", "352021", status="safe"))


def test_grant_revoke_grant_in_one_second_are_three_changes(consents):
    c, box = consents
    c.grant(DataCategory.RIDE_HISTORY)
    c.revoke(DataCategory.RIDE_HISTORY)
    c.grant(DataCategory.RIDE_HISTORY)
    assert [w.body["action"] for w in box.pending(10)] == ["grant", "revoke", "grant"]
    assert c.ledger.is_granted("ride_history")


def test_unknown_category_is_a_clear_error(consents):
    c, _ = consents
    with pytest.raises(ValueError, match="dna"):
        c.grant("dna")  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", ["ja", "en", "ja-easy"])
def test_every_consent_key_has_text(consents, lang):
    c, _ = consents
    texts = json.loads((I18N / f"consent.{lang}.json").read_text(encoding="utf-8"))
    for choice in c.ledger.choices():
        for key in (choice.title_key, choice.purpose_key, choice.recipient_key):
            assert texts.get(key, "").strip(), f"{lang}: {key} missing"
    assert {u.purpose for u in USES.values()} <= {k.split(".")[-1] for k in texts if k.startswith("consent.purpose.")}
