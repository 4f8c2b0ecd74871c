"""PublicCache in-process: one database fetch per URL and generation however many phones poll at
once; an entry past its lifetime is served while one request refreshes it; a change waits."""
from __future__ import annotations

import asyncio

from cityos.caching import Generations, PublicCache
from tests import aio

FEED = "/cityos/v1/changes"


class SlowFeed:
    """A stand-in route: counts its calls, answers after ``delay`` seconds with the call number."""

    def __init__(self, delay: float = 0.05) -> None:
        self.calls, self.delay = 0, delay

    async def __call__(self, scope, receive, send) -> None:
        self.calls += 1
        number = self.calls
        await asyncio.sleep(self.delay)
        body = f'{{"call": {number}}}'.encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


async def _get(app, etag: str | None = None) -> tuple[int, dict[bytes, bytes], bytes]:
    headers = [(b"ngsild-tenant", b"352021")] + ([(b"if-none-match", etag.encode())] if etag else [])
    scope = {"type": "http", "method": "GET", "path": FEED, "query_string": b"type=Alert", "headers": headers}
    sent = await aio.asgi_call(app, scope)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def test_pollers_share_one_fetch_and_an_old_entry_is_served_while_it_is_refreshed() -> None:
    async def run() -> None:
        feed, generations = SlowFeed(), Generations()
        cache = PublicCache(feed, generations, "352021", ttl_s=0.2)
        answers = await asyncio.gather(*(_get(cache) for _ in range(50)))
        assert feed.calls == 1 and {a[2] for a in answers} == {b'{"call": 1}'}
        etag = answers[0][1][b"etag"].decode()
        assert (await _get(cache, etag))[0] == 304 and feed.calls == 1

        await asyncio.sleep(0.25)  # past its lifetime, nothing changed: one refreshes, the others get the old one at once
        feed.delay = 2.0
        refresher = asyncio.create_task(_get(cache, etag))
        while feed.calls < 2:
            await asyncio.sleep(0.001)
        meanwhile = await asyncio.gather(*(_get(cache, etag) for _ in range(20)))
        assert not refresher.done() and all(a[0] == 304 for a in meanwhile)
        assert (await refresher)[2] == b'{"call": 2}' and feed.calls == 2
        feed.delay = 0.05

        generations.bump("352021")  # a change: nobody gets the old answer; one fetch serves all
        changed = await asyncio.gather(*(_get(cache, etag) for _ in range(20)))
        assert feed.calls == 3 and all(a[0] == 200 and a[2] == b'{"call": 3}' for a in changed)

    aio.run(run())


def test_a_fetch_that_cannot_be_kept_is_not_shared() -> None:
    class NoStore(SlowFeed):
        async def __call__(self, scope, receive, send) -> None:
            self.calls += 1
            await asyncio.sleep(self.delay)
            await send({"type": "http.response.start", "status": 200, "headers": [(b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": b"{}"})

    async def run() -> None:
        feed = NoStore()
        cache = PublicCache(feed, Generations(), "352021")
        answers = await asyncio.gather(*(_get(cache) for _ in range(5)))
        assert all(a[0] == 200 and a[1][b"cache-control"] == b"no-store" for a in answers)
        assert feed.calls >= 2  # the first one's answer was not to be kept: the others asked for themselves

    aio.run(run())
