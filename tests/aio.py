"""Async helpers for tests. ``run`` runs a coroutine to the end in a thread of its own: in the
whole suite Playwright's sync API keeps an event loop running in the main thread, where
``asyncio.run`` refuses to start. ``asgi_call`` calls an ASGI app directly; ``wait_for`` polls a condition within a bound."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    result: dict[str, Any] = {}

    def main() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the test's thread, assertion errors included
            result["error"] = exc

    thread = threading.Thread(target=main, name="test-asyncio")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


async def asgi_call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Call an ASGI app with an empty request body; return the messages it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Until ``condition()`` holds, checked every 10 ms; fails after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
