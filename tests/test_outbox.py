"""Outbox: consent gate, encryption at rest, idempotency, coalescing, purge, tamper detection."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from offline.outbox import ConsentRequired, Outbox, OutboxError
from offline.store import open_store
from protocol.entities import geo_point, make_entity


@pytest.fixture()
def store(tmp_path: Path):
    db = open_store(tmp_path / "m.db")
    yield db
    db.close()


def status(pid: str, value: str = "safe", **extra) -> dict:
    return make_entity("SafetyStatus", pid, "352021", status=value, **extra)


def make_outbox(db, granted: set[str], key: bytes | None = None) -> Outbox:
    return Outbox(db, key or os.urandom(32), lambda c: c in granted)


def test_refuses_without_consent_and_queues_nothing(store):
    box = make_outbox(store, set())
    with pytest.raises(ConsentRequired, match="safety_status"):
        box.enqueue("safety_status", status("p1"))
    assert box.queued_count() == 0


def test_location_attribute_needs_location_consent_too(store):
    granted = {"safety_status"}
    box = make_outbox(store, granted)
    with pytest.raises(ConsentRequired, match="location"):
        box.enqueue_many("safety_status", [(status("p1"), None), (status("p2", location=geo_point(33.95, 131.25)), None)])
    assert box.queued_count() == 0  # all or none
    granted.add("location")
    box.enqueue("safety_status", status("p2", location=geo_point(33.95, 131.25)))
    assert box.pending(10)[0].categories == ("safety_status", "location")


def test_payload_is_encrypted_at_rest(tmp_path):
    db = open_store(tmp_path / "m.db")
    box = make_outbox(db, {"safety_status"})
    box.enqueue("safety_status", status("resident-4711", "needHelp", note="Yamada Taro, 2F bedroom"))
    db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (b"resident-4711", b"Yamada", b"needHelp", b"2F bedroom"):
        assert secret not in raw


def test_roundtrip_in_queue_order(store):
    box = make_outbox(store, {"safety_status"})
    keys = [box.enqueue("safety_status", status(f"p{i}")) for i in range(5)]
    pending = box.pending(10)
    assert [w.idem_key for w in pending] == keys
    assert pending[2].body == status("p2")


def test_same_version_twice_is_one_row_and_newer_version_supersedes(store):
    box = make_outbox(store, {"safety_status"})
    first = box.enqueue("safety_status", status("p1", "evacuating"))
    assert box.enqueue("safety_status", status("p1", "evacuating")) == first
    assert box.queued_count() == 1
    box.enqueue("safety_status", status("p1", "atShelter"))
    assert [w.body["status"]["value"] for w in box.pending(10)] == ["atShelter"]


def test_purge_drops_only_writes_needing_that_category(store):
    box = make_outbox(store, {"safety_status", "location", "ride_history"})
    box.enqueue("safety_status", status("p1"))
    box.enqueue("safety_status", status("p2", location=geo_point(33.9, 131.2)))
    box.enqueue("ride_history", make_entity("RideRequest", "r1", "352021", pickup="stop-3"))
    assert box.purge("location") == 1
    assert sorted(w.body["id"] for w in box.pending(10)) == ["urn:ngsi-ld:RideRequest:r1", "urn:ngsi-ld:SafetyStatus:p1"]


def test_wrong_key_rows_are_parked_not_crashing(store):
    make_outbox(store, {"safety_status"}).enqueue("safety_status", status("p1"))
    other = make_outbox(store, {"safety_status"})  # secure storage lost: new key
    assert other.pending(10) == []
    assert other.queued_count() == 0
    assert "does not decrypt" in other.rejected()[0][2]


def test_tampered_ciphertext_is_detected(store):
    box = make_outbox(store, {"safety_status"}, key=b"k" * 32)
    box.enqueue("safety_status", status("p1"))
    store.execute("UPDATE sync_outbox SET categories = ',ride_history,'")  # move row to another category
    assert box.pending(10) == []


def test_bad_key_and_bad_entity_are_clear_errors(store):
    with pytest.raises(OutboxError, match="32 bytes"):
        Outbox(store, b"short", lambda c: True)
    box = make_outbox(store, {"safety_status"})
    with pytest.raises(ValueError, match="id None is not a URN"):
        box.enqueue("safety_status", {"type": "SafetyStatus"})
    with pytest.raises(ValueError, match="'status' is not normalised"):
        box.enqueue("safety_status", {"id": "urn:ngsi-ld:SafetyStatus:p1", "type": "SafetyStatus", "status": "safe"})
    assert box.queued_count() == 0
