"""Cheap public reads: anonymous GETs of public data answered from memory, with ETag and 304.

What is public (shelters, hazard areas, alerts) changes rarely and is read by every phone of
a city. ``PublicCache`` is ASGI middleware for anonymous ``GET`` of the change feed and the
entity query: the first answer for a URL (+ tenant and Accept) is kept with its ``ETag`` and
``Cache-Control: public, max-age=…``; later requests get it from memory, and a conditional GET
whose ``If-None-Match`` names it gets ``304`` — neither touches the database.

An entry is good while its municipality's public *generation* is unchanged and for at most
``ttl_s`` (1 s on SQLite, 5 s with NOTIFY on PostgreSQL; an older one is still served while one
request refreshes it). Generations move when a transaction that wrote public entities
commits: in this process at once (``Store.write()`` calls back), in the other workers through PostgreSQL
``LISTEN/NOTIFY`` (``Notices``). If the listener loses its connection, nothing is served from
memory until it is back; ``ttl_s`` bounds what a writer outside the platform (the
``cityos.alerts`` command on SQLite) can leave stale. A handler that answers
``Cache-Control: no-store`` (a change-feed page that held rows back) is not kept.

One request per URL asks the database when an entry is missing or its generation moved; the
others wait for its answer rather than all running the same query at once (a city's phones
poll the same few URLs).
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityos.store import PUBLIC_CHANNEL

log = logging.getLogger("cityos.cache")
CACHED_PATHS = ("/cityos/v1/changes", "/ngsi-ld/v1/entities")
MAX_AGE_S = 2
MAX_ENTRIES = 2048
MAX_BODY = 1 << 20


class Generations:
    """Per municipality: a number that moves whenever its public data changed."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}
        self._lock = threading.Lock()
        self.live = True  # False while changes from other workers might be missed

    def bump(self, tenant: str) -> None:
        with self._lock:
            self._values[tenant] = self._values.get(tenant, 0) + 1

    def bump_all(self) -> None:
        with self._lock:
            self._values = {t: v + 1 for t, v in self._values.items()}

    def of(self, tenant: str) -> int:
        return self._values.get(tenant, 0)


class Notices:
    """Listens on PostgreSQL for commits of public data by any worker (``pg_notify`` in
    cityos/store.py) and moves the generation of the municipality named in the payload."""

    def __init__(self, conninfo: str, generations: Generations, channels: dict[str, Callable[[str], None]] | None = None,
                 on_listening: Callable[[], None] | None = None) -> None:
        """``channels``: more channels and what to do with a notice's payload; ``on_listening``:
        runs each time the listener is (again) connected, to catch up on what it missed."""
        self.conninfo, self.generations, self.on_listening = conninfo, generations, on_listening
        self.channels = {PUBLIC_CHANNEL: generations.bump, **(channels or {})}
        self._stop = threading.Event()
        self._ready = threading.Event()
        generations.live = False
        self._thread = threading.Thread(target=self._run, name="cityos-notices", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    for channel in self.channels:
                        conn.execute(f"LISTEN {channel}")
                    self.generations.bump_all()  # whatever happened while not listening
                    if self.on_listening is not None:
                        self.on_listening()
                    self.generations.live, delay = True, 0.2
                    self._ready.set()
                    while not self._stop.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self.channels[notice.channel](notice.payload)
            except psycopg.Error as exc:
                self.generations.live = False
                self._ready.set()
                log.warning("change notices lost (%s); serving public reads from the database until reconnected", exc.__class__.__name__)
                self._stop.wait(delay)
                delay = min(5.0, delay * 2)
        self.generations.live = False


@dataclass(slots=True)
class _Entry:
    generation: int
    stored: float
    etag: str
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class PublicCache:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, generations: Generations, default_tenant: str, ttl_s: float = 1.0) -> None:
        self.app, self.generations, self.default_tenant, self.ttl_s = app, generations, default_tenant, ttl_s
        self._entries: OrderedDict[tuple[str, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, ...], tuple[int, asyncio.Future[_Entry | None]]] = {}  # key -> (generation, its answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in CACHED_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if "authorization" in headers:  # personal data may be in it: never shared
            await self.app(scope, receive, send)
            return
        tenant = headers.get("ngsild-tenant") or self.default_tenant
        key = (scope["path"], scope.get("query_string", b"").decode("latin-1"), tenant, headers.get("accept", ""))
        generation = self.generations.of(tenant)  # read before the database: a commit after it makes the entry stale, not wrong
        entry, aged = self._lookup(key, generation)
        if entry is None or (aged and key not in self._inflight):  # missing or changed, or old and nobody refreshing it yet
            entry = await self._shared_fetch(key, scope, receive, send, generation)
            if entry is None:
                return  # answered as is (not cacheable)
        await _answer(send, entry, _matches(headers.get("if-none-match"), entry.etag))

    async def _shared_fetch(self, key: tuple[str, ...], scope: Scope, receive: Receive, send: Send, generation: int) -> _Entry | None:
        """Fetch once for everyone: when an entry goes stale (a change, or its lifetime), the
        thousand phones polling it must not all run the query; requests for the same key and
        generation wait for the one already asking the database and share its answer."""
        leader = self._inflight.get(key)
        if leader is not None and leader[0] == generation and self.generations.live:
            shared = await asyncio.shield(leader[1])
            if shared is not None:
                return shared
            # the leader's answer could not be kept (an error, no-store): ask for ourselves
        future: asyncio.Future[_Entry | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (generation, future)
        entry = None
        try:
            entry = await self._fetch(scope, receive, send, generation)
            if entry is not None and self.generations.live:
                self._keep(key, entry)
        finally:
            if self._inflight.get(key, (0, None))[1] is future:
                del self._inflight[key]
            future.set_result(entry if self.generations.live else None)
        return entry

    def _lookup(self, key: tuple[str, ...], generation: int) -> tuple[_Entry | None, bool]:
        """The entry of the current generation, if any, and whether it is older than ``ttl_s``.
        An old entry is still served while one request refreshes it (nothing is known to have
        changed: the lifetime only bounds writers the generations do not see)."""
        if not self.generations.live:
            return None, False
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.generation != generation:
                return None, False
            self._entries.move_to_end(key)
            return entry, time.monotonic() - entry.stored > self.ttl_s

    def _keep(self, key: tuple[str, ...], entry: _Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    async def _fetch(self, scope: Scope, receive: Receive, send: Send, generation: int) -> _Entry | None:
        """Run the route; a 200 that may be kept comes back as an entry, anything else is passed on."""
        start: Message | None = None
        chunks: list[bytes] = []
        passing = False

        async def capture(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
            elif message["type"] == "http.response.start":
                start = message
                cache_control = dict(message.get("headers", [])).get(b"cache-control", b"")
                if message["status"] != 200 or b"no-store" in cache_control:
                    passing = True
                    await send(message)
            else:
                chunks.append(message.get("body", b""))
                if sum(len(c) for c in chunks) > MAX_BODY and start is not None:  # too big to keep: send what we have, then the rest
                    passing = True
                    await send(start)
                    await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": message.get("more_body", False)})

        await self.app(scope, receive, capture)
        if passing or start is None:
            return None
        body = b"".join(chunks)
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length", b"cache-control", b"etag")]
        kept += [(b"cache-control", f"public, max-age={MAX_AGE_S}".encode()), (b"etag", etag.encode())]
        return _Entry(generation, time.monotonic(), etag, 200, kept, body)


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def _answer(send: Send, entry: _Entry, not_modified: bool) -> None:
    if not_modified:
        headers = [(k, v) for k, v in entry.headers if k in (b"cache-control", b"etag", b"link")]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [*entry.headers, (b"content-length", str(len(entry.body)).encode())]
    await send({"type": "http.response.start", "status": entry.status, "headers": headers})
    await send({"type": "http.response.body", "body": entry.body})
