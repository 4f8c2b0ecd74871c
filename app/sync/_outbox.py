"""The outbox and the public datasets: push queued writes in batches, pull datasets by delta
cursor. The app's ``SyncEngine`` runs it (the ``outbox`` feature and one feature per dataset).

All progress lives in SQLite, so it can be killed at any instruction and resumes where it
stopped: a write leaves the outbox only after the platform acknowledged it, and the platform
upserts by entity id, so a batch resent after a crash is stored once. Give it its own store
connection (``open_store(path)``) when it runs in a thread.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlite_utils

from app.platform import Change, NotAuthorised, PlatformClient, PlatformError
from geo.sql import utc_now
from offline.outbox import Outbox, QueuedWrite

log = logging.getLogger(__name__)  # logs counts and error kinds only, never payloads or tokens


@dataclass(frozen=True, slots=True)
class Dataset:
    """A public dataset pulled from the platform's change feed, e.g. shelter status or alerts."""

    name: str
    entity_types: tuple[str, ...]


SHELTER_STATUS = Dataset("shelter_status", ("EvacuationShelter",))
ALERTS = Dataset("alerts", ("Alert",))


@dataclass(frozen=True, slots=True)
class Freshness:
    """How fresh one dataset is, for the UI ("updated 3 min ago", or the last error)."""

    name: str
    last_success_at: str | None
    last_attempt_at: str | None
    last_error: str | None
    entity_count: int


@dataclass(frozen=True, slots=True)
class SyncState:
    queued: int
    rejected: int  # writes the platform refused for good (see Outbox.rejected())
    last_push_at: str | None
    last_error: str | None
    datasets: dict[str, Freshness] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PushReport:
    sent: int
    rejected: int
    error: PlatformError | None = None


class OutboxSync:
    def __init__(self, db: sqlite_utils.Database, outbox: Outbox, client: PlatformClient,
                 datasets: Sequence[Dataset] = (SHELTER_STATUS, ALERTS), *, batch_size: int = 500,
                 pull_page: int = 1000) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._db, self._outbox, self._client = db, outbox, client
        self.datasets = {d.name: d for d in datasets}
        self.batch_size, self.pull_page = batch_size, pull_page
        self._observers: list[Callable[[SyncState], None]] = []
        with db.atomic():
            for d in datasets:
                db.execute("INSERT OR IGNORE INTO sync_dataset (name) VALUES (?)", [d.name])

    # -- push ----------------------------------------------------------------------------------
    def push(self) -> PushReport:
        """Send batches until the outbox is empty or a batch fails; never raises PlatformError."""
        sent = rejected = 0
        try:
            while batch := self._next_batch():
                ok, bad = self._send(batch)
                sent, rejected = sent + ok, rejected + bad
        except PlatformError as err:
            self._set_status(last_error=_describe(err))
            log.warning("push stopped after %d sent: %s", sent, _describe(err))
            self._notify()
            return PushReport(sent, rejected, err)
        self._set_status(last_error=None, last_push_at=utc_now())
        self._notify()
        return PushReport(sent, rejected)

    def _next_batch(self) -> list[QueuedWrite]:
        """The oldest writes: one consent change, or upserts with each entity at most once."""
        while True:
            writes = self._outbox.pending(self.batch_size)
            stale = [w for w in writes if not self._outbox.still_consented(w)]
            if not stale:
                break
            self._outbox.remove(stale)  # consent withdrawn after queueing: never send
        if writes and writes[0].op == "consent":
            return writes[:1]
        batch: list[QueuedWrite] = []
        ids: set[str] = set()
        for write in writes:
            if write.op != "upsert" or write.body["id"] in ids:
                break
            batch.append(write)
            ids.add(write.body["id"])
        return batch

    def _send(self, batch: list[QueuedWrite]) -> tuple[int, int]:
        """Deliver one batch; returns (sent, rejected). Retryable errors propagate."""
        try:
            if batch[0].op == "consent":
                self._send_consent(batch[0].body)
                self._outbox.remove(batch)
                return 1, 0
            result = self._client.upsert([w.body for w in batch])
        except PlatformError as err:
            if err.retryable or isinstance(err, NotAuthorised):
                raise
            if len(batch) == 1:
                self._outbox.reject(batch[0], _describe(err))
                return 0, 1
            # The broker refused the batch as a whole: find the culprit one by one.
            totals = [self._send([w]) for w in batch]
            return sum(t[0] for t in totals), sum(t[1] for t in totals)
        failed = {w.seq: result.failed[w.body["id"]] for w in batch if w.body["id"] in result.failed}
        for write in batch:
            if write.seq in failed:
                self._outbox.reject(write, failed[write.seq])
        self._outbox.remove([w for w in batch if w.seq not in failed])
        return len(batch) - len(failed), len(failed)

    def _send_consent(self, change: dict) -> None:
        args = (change["category"], change["purpose"], change["recipient"])
        if change["action"] == "grant":
            self._client.grant_consent(*args)
        else:
            self._client.revoke_consent(*args)  # the platform deletes that category's data

    # -- pull ----------------------------------------------------------------------------------
    def pull(self, name: str) -> int:
        """Apply what changed in dataset ``name`` since its cursor; return changes applied.

        Each page is applied and its cursor stored in one transaction, so a kill between
        pages loses nothing and repeats nothing.
        """
        dataset = self.datasets[name]
        started = utc_now()
        applied = 0
        try:
            while True:
                cursor = self._db.execute("SELECT cursor FROM sync_dataset WHERE name = ?", [name]).fetchone()[0]
                page = self._client.changes(dataset.entity_types, cursor, limit=self.pull_page, public=True)
                with self._db.atomic():
                    for change in page.changes:
                        self._apply(name, change)
                    self._db.execute("UPDATE sync_dataset SET cursor = ? WHERE name = ?", [page.cursor, name])
                applied += len(page.changes)
                if not page.has_more:
                    break
        except PlatformError as err:
            self._db.execute("UPDATE sync_dataset SET last_attempt_at = ?, last_error = ? WHERE name = ?",
                             [started, _describe(err), name])
            self._notify()
            raise
        count = self._db.execute("SELECT count(*) FROM sync_entity WHERE dataset = ?", [name]).fetchone()[0]
        self._db.execute("UPDATE sync_dataset SET last_success_at = ?, last_attempt_at = ?, last_error = NULL,"
                         " entity_count = ? WHERE name = ?", [started, started, count, name])
        self._notify()
        return applied

    def _apply(self, dataset: str, change: Change) -> None:
        if change.deleted or change.entity is None:
            self._db.execute("DELETE FROM sync_entity WHERE id = ?", [change.id])
            return
        self._db.execute("INSERT OR REPLACE INTO sync_entity VALUES (?, ?, ?, ?, ?)",
                         [change.id, dataset, change.type, change.modified_at,
                          json.dumps(change.entity, ensure_ascii=False, separators=(",", ":"))])

    def entities(self, name: str) -> list[dict]:
        """The locally cached entities of dataset ``name`` (normalised NGSI-LD)."""
        return cached_entities(self._db, name)

    # -- whole cycles ------------------------------------------------------------------------------
    def sync_once(self) -> PlatformError | None:
        """Push, then pull every dataset. Returns the first error (already recorded), or None."""
        first = self.push().error
        for name in self.datasets:
            try:
                self.pull(name)
            except PlatformError as err:
                first = first or err
        return first

    # -- state for the UI ------------------------------------------------------------------------
    def state(self) -> SyncState:
        return read_state(self._db, self._outbox, tuple(self.datasets))

    def subscribe(self, observer: Callable[[SyncState], None]) -> Callable[[], None]:
        """Call ``observer(state)`` after every push or pull (from the sync thread); returns unsubscribe."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def _notify(self) -> None:
        if not self._observers:
            return
        state = self.state()
        for observer in list(self._observers):
            observer(state)

    def _set_status(self, **values: str | None) -> None:
        with self._db.atomic():
            for key, value in values.items():
                self._db.execute("INSERT OR REPLACE INTO sync_status VALUES (?, ?)", [key, value])


def cached_entities(db: sqlite_utils.Database, name: str) -> list[dict]:
    """The entities the last pulls of dataset ``name`` brought, from any connection to the store."""
    rows = db.execute("SELECT data FROM sync_entity WHERE dataset = ? ORDER BY id", [name]).fetchall()
    return [json.loads(r[0]) for r in rows]


def read_state(db: sqlite_utils.Database, outbox: Outbox, datasets: Sequence[str]) -> SyncState:
    """Outbox counts and dataset freshness as stored, from any connection to the store."""
    status = dict(db.execute("SELECT key, value FROM sync_status").fetchall())
    fresh = {row[0]: Freshness(*row) for row in db.execute(
        "SELECT name, last_success_at, last_attempt_at, last_error, entity_count FROM sync_dataset ORDER BY name")
        if row[0] in datasets}
    return SyncState(queued=outbox.queued_count(), rejected=len(outbox.rejected()),
                     last_push_at=status.get("last_push_at"), last_error=status.get("last_error"), datasets=fresh)


def _describe(err: PlatformError) -> str:
    """Error text safe for the UI and logs: status and title, never bodies or tokens."""
    if isinstance(err, NotAuthorised):
        return "login required"
    return str(err)[:300]
