"""Guard in-process: with several workers a keep-alive connection is ended once it is old enough,
so clients spread over the workers again after one was restarted."""
from __future__ import annotations

import time

from cityos.limits import Guard, TokenBuckets
from tests import aio


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _headers(guard: Guard, client: tuple[str, int]) -> dict[bytes, bytes]:
    scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": [], "client": client}
    sent = await aio.asgi_call(guard, scope)
    return dict(sent[0]["headers"])


def test_old_connections_are_ended_after_their_answer() -> None:
    async def run() -> None:
        guard = Guard(_ok, 1 << 20, TokenBuckets(0, 1), lambda _: None, access_log=0.0, connection_age_s=0.05)
        assert b"connection" not in await _headers(guard, ("127.0.0.1", 50001))  # new: kept open
        assert b"connection" not in await _headers(guard, ("127.0.0.1", 50002))
        time.sleep(0.08)  # older than 1.5 x the age
        assert (await _headers(guard, ("127.0.0.1", 50001)))[b"connection"] == b"close"
        assert b"connection" not in await _headers(guard, ("127.0.0.1", 50001))  # its port again: a new connection
        alone = Guard(_ok, 1 << 20, TokenBuckets(0, 1), lambda _: None, access_log=0.0)  # one worker: never
        assert b"connection" not in await _headers(alone, ("127.0.0.1", 50003))
        time.sleep(0.01)
        assert b"connection" not in await _headers(alone, ("127.0.0.1", 50003))

    aio.run(run())
