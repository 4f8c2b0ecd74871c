"""Guards in front of every route: body size (413), request rate (429), and a privacy-safe access log.

The access log names method, path and status only: query strings (which may hold personal
filters) and headers (which hold tokens) never reach the log. It logs a share of requests
(``--access-log``; server errors always): at a city's request rates a line per request costs
more than the request. With several workers on PostgreSQL the per-caller rate limit is shared
(``SharedTokenBuckets``) and keep-alive connections are recycled (``Guard``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Column, Float, String, Table
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityos.problems import INTERNAL, MEDIA_TYPE, RATE_LIMITED, TOO_LARGE, Problem
from cityos.store import metadata

log = logging.getLogger("cityos.access")


class TokenBuckets:
    """One token bucket per caller: ``rate`` requests/s sustained, ``burst`` at once."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed, else seconds until the next request would be."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle callers rather than grow without bound
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return (1 - tokens) / self.rate

    def charge(self, key: str, requests: int) -> None:
        """Take ``requests`` more tokens from ``key``'s bucket (it may go below zero: then the
        caller waits until it has refilled past one)."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(self.burst), now))
            self._buckets[key] = (min(self.burst, tokens + (now - stamp) * self.rate) - requests, now)


rate_usage = Table(
    "rate_usage", metadata,
    Column("key", String(32), primary_key=True),  # blake2b of the caller key: no subjects or addresses at rest
    Column("total", BigInteger, nullable=False),  # requests taken by all workers, ever
    Column("seen", Float, nullable=False),  # unix time of the last report
)


class SharedTokenBuckets(TokenBuckets):
    """The per-caller rate limit for all workers on one PostgreSQL together.

    Each worker decides from its own bucket, so a request costs no database round trip. Every
    ``SYNC_S`` a thread adds what this worker let through for its busier callers to a shared
    count (``rate_usage``, one statement) and gets the totals back: what the other workers let
    through since the last report is taken from the local bucket too. A caller spread over N
    workers is thus held to about the limit, not N times it. Callers that used less than an
    N-th of a quarter of their allowance here in the interval are not reported (their total
    rate is below the limit wherever they are), so a surge of ordinary phones sends nothing.
    """

    SYNC_S = 0.5
    FORGET_S = 600.0

    def __init__(self, rate: float, burst: int, conninfo: str, workers: int, background: bool = True) -> None:
        """``background``: report from a thread of its own every ``SYNC_S`` (tests call ``sync``)."""
        super().__init__(rate, burst)
        self.conninfo, self.background = conninfo, background
        self.report_from = max(1, int(rate * self.SYNC_S / (4 * max(1, workers))))
        self._taken: dict[str, int] = {}  # key -> requests let through here since the last report
        self._totals: dict[str, tuple[int, float]] = {}  # key -> (shared total at our last report, when)
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._pruned = 0.0

    def take(self, key: str) -> float:
        wait = super().take(key)
        if wait == 0 and self.rate > 0:
            with self._lock:
                self._taken[key] = self._taken.get(key, 0) + 1
            if self._thread is None and self.background:
                self._thread = threading.Thread(target=self._run, name="cityos-rate-sync", daemon=True)
                self._thread.start()
        return wait

    def close(self) -> None:
        self._closed.set()

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._closed.wait(self.SYNC_S):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                self.sync(conn)
            except psycopg.Error as exc:
                log.warning("rate limit counts not shared (%s); each worker counts alone until reconnected", exc.__class__.__name__)
                conn = None
        if conn is not None:
            conn.close()

    def sync(self, conn: psycopg.Connection) -> None:
        """Report this worker's busier callers and charge what the others let through."""
        with self._lock:
            taken, self._taken = self._taken, {}
        busy = {_hashed(k): (k, n) for k, n in taken.items() if n >= self.report_from}
        now = time.time()
        if busy:
            hashed = list(busy)
            rows = conn.execute(
                "INSERT INTO rate_usage (key, total, seen) SELECT k, n, %s FROM unnest(%s::text[], %s::bigint[]) AS u(k, n) "
                "ON CONFLICT (key) DO UPDATE SET total = rate_usage.total + excluded.total, seen = excluded.seen RETURNING key, total",
                (now, hashed, [busy[h][1] for h in hashed])).fetchall()
            for digest, total in rows:
                key, mine = busy[digest]
                before = self._totals.get(key)
                self._totals[key] = (total, now)
                # Only against our report of the round before: after a quiet spell here, what the
                # others let through back then is no longer in this bucket's window.
                recent = before is not None and now - before[1] < 3 * self.SYNC_S
                others = total - before[0] - mine if recent and before is not None else 0
                if others > 0:
                    self.charge(key, others)
        if now - self._pruned > 60:  # callers gone quiet: forget them here and (whoever gets there first) in the table
            self._pruned = now
            self._totals = {k: v for k, v in self._totals.items() if now - v[1] < self.FORGET_S}
            conn.execute("DELETE FROM rate_usage WHERE seen < %s", (now - self.FORGET_S,))


def _hashed(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app a body already read whole, then waits as usual (for
    the disconnect): middleware that had to read the body first passes it on with this."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_problem(send: Send, problem: Problem) -> None:
    body = json.dumps(problem.body()).encode()
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware; ``caller_key`` maps a bearer token to a stable id (its ``sub``).

    ``connection_age_s`` (0: off): a keep-alive connection older than about this many seconds
    is ended after its current answer (``Connection: close``; gRPC's MAX_CONNECTION_AGE does the
    same). With several workers on one address a connection stays with the worker that accepted
    it: without this, every phone (or nginx upstream connection) that reconnected while a
    worker was down would stay on the others long after it is back. Clients reconnect for
    their next request, and the idlest worker tends to accept it. Ages are spread over
    0.5–1.5× so that connections do not all end at once.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, buckets: TokenBuckets, caller_key: Callable[[str], str | None], access_log: float = 1.0,
                 connection_age_s: float = 0.0):
        self.app, self.max_body_bytes, self.buckets, self.caller_key = app, max_body_bytes, buckets, caller_key
        self.access_log, self.connection_age_s = access_log, connection_age_s
        self._ends: dict[Any, float] = {}  # (client address, port) -> when to end its connection
        self._pruned_at = 1024

    def _ending(self, scope: Scope) -> bool:
        """Whether this answer ends its connection (it is old enough)."""
        client = tuple(scope.get("client") or ())
        if not client:
            return False
        now = time.monotonic()
        ends = self._ends.get(client)
        if ends is None:
            self._ends[client] = now + self.connection_age_s * (0.5 + random.random())
            if len(self._ends) > self._pruned_at:  # connections that closed by themselves: their ends passed long ago
                self._ends = {k: v for k, v in self._ends.items() if v > now - self.connection_age_s}
                self._pruned_at = max(1024, 2 * len(self._ends))
            return False
        if now < ends:
            return False
        del self._ends[client]
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 0}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                if self.connection_age_s > 0 and self._ending(scope):
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self._guarded(scope, receive, send_logged)
        finally:
            if status_holder["status"] >= 500 or (self.access_log > 0 and random.random() < self.access_log):
                log.info("%s %s %s %.1fms", scope["method"], scope["path"], status_holder["status"], (time.perf_counter() - started) * 1000)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        wait = self.buckets.take(self._key(scope, headers)) if self.buckets.rate > 0 else 0.0
        if wait > 0:
            retry = str(max(1, math.ceil(wait)))
            await _send_problem(send, Problem(429, RATE_LIMITED, f"too many requests; retry after {retry} s", {"Retry-After": retry}))
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _send_problem(send, self._too_large())
            return
        body, too_large = await self._read_body(receive)
        if too_large:
            await _send_problem(send, self._too_large())
            return
        replay = replaying(body, receive)
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception:
            logging.getLogger("cityos").exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not response_started:
                await _send_problem(send, Problem(500, INTERNAL, "the server failed to handle this request"))

    def _too_large(self) -> Problem:
        return Problem(413, TOO_LARGE, f"the request body exceeds {self.max_body_bytes} bytes")

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    def _key(self, scope: Scope, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            sub = self.caller_key(auth[7:].strip())
            if sub:
                return "sub:" + sub
        client = scope.get("client")
        return "addr:" + (client[0] if client else "unknown")
