"""Run a test's coroutine to the end in a thread of its own: in the whole suite Playwright's
sync API keeps an event loop running in the main thread, where ``asyncio.run`` refuses to start."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
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
