"""Login throttle: password guessing is paused per username and address, and spraying per address.

An attempt is reserved *before* the slow password hash (``begin``) and released only when
it succeeded (``end``), so parallel guesses cannot all pass a check made before any of them
was recorded. Limits count failures within a sliding window:

- per (username, address): a few guesses at one account from one place;
- per address: spraying one password over many usernames;
- per username over all addresses: a distributed attack, set well above the pair limit, so
  that one attacker's failures do not lock the account's owner out from their own address.

``LoginThrottle`` counts in memory (one process: SQLite). ``SharedLoginThrottle`` counts in
the database, so all workers on one PostgreSQL share the limits; its reservations are made
under an advisory lock, and the keys are stored hashed (no usernames or addresses at rest).
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    select,
    text,
)

from cityos.store import Store, advisory_key, metadata

WINDOW_S = 60.0
PER_ACCOUNT_AND_ADDRESS = 5
PER_ADDRESS = 30
PER_ACCOUNT = 100
_MAX_KEYS = 100_000


class LoginThrottle:
    def __init__(self, window_s: float = WINDOW_S, per_pair: int = PER_ACCOUNT_AND_ADDRESS,
                 per_address: int = PER_ADDRESS, per_account: int = PER_ACCOUNT):
        self.window_s = window_s
        self._limits = {"pair": per_pair, "addr": per_address, "user": per_account}
        self._attempts: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def begin(self, username: str, address: str) -> float:
        """Reserve one attempt: 0 when it may go ahead (then call ``end``), else the seconds to wait."""
        now = time.monotonic()
        keys = self._keys(username, address)
        with self._lock:
            waits = [self._wait(key, now) for key in keys]
            if max(waits) > 0:
                return max(waits)
            for key in keys:
                self._attempts.setdefault(key, deque()).append(now)
            if len(self._attempts) > _MAX_KEYS:
                self._forget_idle(now)
        return 0.0

    def end(self, username: str, address: str, succeeded: bool) -> None:
        """A failure keeps its reservation; a success clears the pair and returns the rest."""
        if not succeeded:
            return
        pair, *others = self._keys(username, address)
        with self._lock:
            self._attempts.pop(pair, None)
            for key in others:
                attempts = self._attempts.get(key)
                if attempts:
                    attempts.pop()

    def _keys(self, username: str, address: str) -> list[tuple[str, str]]:
        user = username.strip().lower()
        return [("pair", f"{user}\n{address}"), ("addr", address), ("user", user)]

    def _wait(self, key: tuple[str, str], now: float) -> float:
        attempts = self._attempts.get(key)
        if not attempts:
            return 0.0
        while attempts and now - attempts[0] >= self.window_s:
            attempts.popleft()
        if len(attempts) < self._limits[key[0]]:
            return 0.0
        return self.window_s - (now - attempts[0])

    def _forget_idle(self, now: float) -> None:
        self._attempts = {k: v for k, v in self._attempts.items() if v and now - v[-1] < self.window_s}


login_attempt = Table(
    "login_attempt", metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),  # sha256 of kind and key
    Column("at", Float, nullable=False),  # wall-clock seconds: the same for every worker
    Index("login_attempt_key_at", "key", "at"),
)


class SharedLoginThrottle(LoginThrottle):
    """The same limits, counted in the database for every worker (PostgreSQL)."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def begin(self, username: str, address: str) -> float:
        now = time.time()
        keys = [(kind, _hashed(kind, key)) for kind, key in self._keys(username, address)]
        with self._locked() as conn:
            conn.execute(delete(login_attempt).where(login_attempt.c.at < now - self.window_s))
            rows = conn.execute(
                select(login_attempt.c.key, func.count(), func.min(login_attempt.c.at))
                .where(login_attempt.c.key.in_([h for _, h in keys])).group_by(login_attempt.c.key)
            ).all()
            counts = {h: (n, first) for h, n, first in rows}
            waits = [self.window_s - (now - counts[h][1]) for kind, h in keys if h in counts and counts[h][0] >= self._limits[kind]]
            if waits:
                return max(waits)
            conn.execute(login_attempt.insert(), [{"key": h, "at": now} for _, h in keys])
        return 0.0

    def end(self, username: str, address: str, succeeded: bool) -> None:
        if not succeeded:
            return
        (_, pair), *others = [(kind, _hashed(kind, key)) for kind, key in self._keys(username, address)]
        with self._locked() as conn:
            conn.execute(delete(login_attempt).where(login_attempt.c.key == pair))
            for _, h in others:
                newest = select(func.max(login_attempt.c.n)).where(login_attempt.c.key == h).scalar_subquery()
                conn.execute(delete(login_attempt).where(login_attempt.c.n == newest))

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """A write transaction holding the throttle's advisory lock: reservations never interleave."""
        with self.store.write() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("login-throttle")})
            yield conn


def _hashed(kind: str, key: str) -> str:
    return hashlib.sha256(f"{kind}\n{key}".encode()).hexdigest()
