"""The outbox: every write meant for the platform is stored here first, encrypted.

A write is queued only if the resident has consented to every data category it carries
(an entity with a ``location`` also needs the ``location`` consent). Payloads are sealed
with AES-GCM under a per-install key kept in secure storage, never in SQLite; the row's
idempotency key is the AEAD associated data, so a sealed payload cannot be moved to
another row. The idempotency key hashes the NGSI-LD entity id with a version, so queuing
the same version twice is a no-op, and the platform's upsert-by-id makes a resend after a
crash harmless. Consent grants and revocations travel through the same queue, in order,
so the platform sees a grant before the data it allows.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlite_utils
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from geo.sql import utc_now
from protocol.entities import validate

Op = Literal["upsert", "consent"]
KEY_BYTES = 32
LOCATION = "location"


class ConsentRequired(PermissionError):
    """The resident has not consented to sending this data category."""


class OutboxError(ValueError):
    """A payload that cannot be queued or read back; the message says which and why."""


@dataclass(frozen=True, slots=True)
class QueuedWrite:
    seq: int
    idem_key: str
    op: Op
    categories: tuple[str, ...]
    entity_type: str
    body: dict[str, Any]  # the entity, or for 'consent' {"action", "category", "purpose", "recipient"}


def entity_ref(entity_id: str) -> str:
    """Stable, non-reversible handle for an entity id, used to drop superseded versions."""
    return hashlib.sha256(b"mamori-entity\0" + entity_id.encode()).hexdigest()


def needed_consents(category: str, entity: dict[str, Any]) -> tuple[str, ...]:
    """Categories a write needs: its own, plus ``location`` when it carries a position."""
    return (category, LOCATION) if LOCATION in entity and category != LOCATION else (category,)


class Outbox:
    """Queue of writes for the platform, in the store opened by ``offline.store.open_store``."""

    def __init__(self, db: sqlite_utils.Database, key: bytes, consented: Callable[[str], bool]) -> None:
        if len(key) != KEY_BYTES:
            raise OutboxError(f"outbox key must be {KEY_BYTES} bytes, got {len(key)}")
        self._db = db
        self._aead = AESGCM(key)
        self._consented = consented

    # -- queueing -------------------------------------------------------------------------
    def enqueue(self, category: str, entity: dict[str, Any], version: str | None = None) -> str:
        """Queue ``entity`` (a whole normalised NGSI-LD entity) for upsert; return its idempotency key.

        An older queued version of the same entity is dropped: upsert replaces, so only the
        newest state has to travel. Raises ``ConsentRequired`` when a needed consent is missing.
        """
        return self.enqueue_many(category, [(entity, version)])[0]

    def enqueue_many(self, category: str, items: Iterable[tuple[dict[str, Any], str | None]]) -> list[str]:
        """Queue several entities of one category in one transaction (all or none)."""
        rows = []
        for entity, version in items:
            missing = [c for c in needed_consents(category, entity) if not self._consented(c)]
            if missing:
                raise ConsentRequired(f"no consent for data category {missing[0]!r}; nothing was queued")
            validate(entity)  # refuse now what the broker would refuse after days offline
            rows.append(self._row("upsert", needed_consents(category, entity), entity, version))
        with self._db.atomic():
            for row in rows:
                self._db.execute("DELETE FROM sync_outbox WHERE entity_ref = ? AND op = 'upsert' AND rejected IS NULL",
                                 [row["entity_ref"]])
                self._insert(row)
        return [row["idem_key"] for row in rows]

    def enqueue_consent(self, action: Literal["grant", "revoke"], category: str, purpose: str, recipient: str,
                        at: str) -> str:
        """Queue a consent change for the platform's consent registry (needs no consent itself)."""
        body = {"action": action, "category": category, "purpose": purpose, "recipient": recipient, "at": at,
                "id": f"consent:{category}:{purpose}:{recipient}", "type": "Consent"}
        row = self._row("consent", (f"consent:{category}",), body, os.urandom(16).hex())  # each change is new
        self._insert(row)
        return row["idem_key"]

    def purge(self, category: str) -> int:
        """Drop every queued upsert that needs ``category`` (consent revoked); return how many."""
        cursor = self._db.execute("DELETE FROM sync_outbox WHERE op = 'upsert' AND categories LIKE ?",
                                  [f"%,{category},%"])
        return cursor.rowcount

    # -- reading back for the sync engine -----------------------------------------------------
    def pending(self, limit: int) -> list[QueuedWrite]:
        """The oldest ``limit`` writes still to send, decrypted, in queue order."""
        rows = self._db.execute(
            "SELECT seq, idem_key, op, categories, entity_type, nonce, payload FROM sync_outbox"
            " WHERE rejected IS NULL ORDER BY seq LIMIT ?", [limit]).fetchall()
        writes = []
        for seq, key, op, categories, etype, nonce, payload in rows:
            try:
                body = self._open(key, categories, nonce, payload)
            except OutboxError as err:  # e.g. secure storage was wiped: park it, keep the queue moving
                self._db.execute("UPDATE sync_outbox SET rejected = ? WHERE seq = ?", [str(err), seq])
                continue
            writes.append(QueuedWrite(seq, key, op, tuple(categories.strip(",").split(",")), etype, body))
        return writes

    def still_consented(self, write: QueuedWrite) -> bool:
        return write.op == "consent" or all(self._consented(c) for c in write.categories)

    def remove(self, writes: Iterable[QueuedWrite]) -> None:
        """Delivered (or no longer allowed): take the writes off the queue."""
        with self._db.atomic():
            for write in writes:
                self._db.execute("DELETE FROM sync_outbox WHERE seq = ?", [write.seq])

    def reject(self, write: QueuedWrite, reason: str) -> None:
        """The platform refused this write for good: park it, visible to the UI, not retried."""
        self._db.execute("UPDATE sync_outbox SET rejected = ? WHERE seq = ?", [reason[:300], write.seq])

    # -- state for the UI -------------------------------------------------------------------------
    def queued_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM sync_outbox WHERE rejected IS NULL").fetchone()[0]

    def rejected(self) -> list[tuple[str, str, str]]:
        """(entity type, categories, reason) of each parked write, oldest first."""
        return [(t, c.strip(","), r) for t, c, r in self._db.execute(
            "SELECT entity_type, categories, rejected FROM sync_outbox WHERE rejected IS NOT NULL ORDER BY seq")]

    # -- sealing ------------------------------------------------------------------------------------
    def _insert(self, row: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO sync_outbox (idem_key, op, categories, entity_type, entity_ref, nonce, payload,"
            " created_at) VALUES (:idem_key, :op, :categories, :entity_type, :entity_ref, :nonce, :payload,"
            " :created_at)", row)

    def _row(self, op: Op, categories: tuple[str, ...], body: dict[str, Any], version: str | None) -> dict[str, Any]:
        ident, etype = body.get("id"), body.get("type")
        if not isinstance(ident, str) or not isinstance(etype, str):
            raise OutboxError(f"{categories[0]}: entity needs string 'id' and 'type'; nothing was queued")
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        version = version or hashlib.sha256(payload).hexdigest()
        idem_key = hashlib.sha256(f"{op}\0{ident}\0{version}".encode()).hexdigest()
        wrapped = "," + ",".join(categories) + ","
        nonce = os.urandom(12)
        return {"idem_key": idem_key, "op": op, "categories": wrapped, "entity_type": etype,
                "entity_ref": entity_ref(ident), "nonce": nonce,
                "payload": self._aead.encrypt(nonce, payload, _aad(idem_key, wrapped)), "created_at": utc_now()}

    def _open(self, idem_key: str, categories: str, nonce: bytes, payload: bytes) -> dict[str, Any]:
        try:
            return json.loads(self._aead.decrypt(nonce, payload, _aad(idem_key, categories)))
        except InvalidTag:
            raise OutboxError(f"outbox row {idem_key[:12]}… does not decrypt with this install's key") from None


def _aad(idem_key: str, categories: str) -> bytes:
    return f"{idem_key}\0{categories}".encode()
