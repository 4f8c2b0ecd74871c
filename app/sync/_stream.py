"""The platform's event stream (``GET /cityos/v1/events``, server-sent events): family statuses
as they change, and a nudge when alerts or shelter counts change. The sync engine listens to it
while an account is logged in and hands each event to the features registered for its topic;
the features' own schedules are the fallback when the stream is down.

    stream = EventStream(link.http, on_event=handle, ready=lambda: link.logged_in)
    threading.Thread(target=stream.run, args=(stop,), daemon=True).start()

``on_event(topic, data)`` runs on the stream's thread: ``("family", {"groups": [{"id", "members"}]})``
or ``("alerts" | "shelters", {"seq": n})``. It reconnects with backoff; ``connected`` says
whether it is up.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from app.platform import NotAuthorised, PlatformError, PlatformHttp
from app.sync._backoff import Backoff

log = logging.getLogger(__name__)  # error kinds only

PATH = "/cityos/v1/events"
TOPICS = ("family", "alerts", "shelters")
IDLE_CHECK_S = 5.0  # how soon a login is noticed while nobody is logged in


def parse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) per server-sent event (WHATWG EventSource rules; comments skipped)."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


class EventStream:
    def __init__(self, http: PlatformHttp, *, on_event: Callable[[str, dict[str, Any]], None],
                 topics: Sequence[str] = TOPICS, ready: Callable[[], bool] = lambda: True,
                 read_timeout: float = 45.0) -> None:
        self._http, self._on_event, self._topics, self._ready = http, on_event, ",".join(topics), ready
        # The platform sends a comment every 15 s, so a silent read of 45 s means the link is gone.
        self._timeout = httpx.Timeout(10.0, read=read_timeout)
        self.connected = False

    def run(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set (noticed at the next event or ping); while ``ready()``
        is false (nobody logged in) wait without asking the platform."""
        backoff = Backoff(base=1.0, cap=30.0)
        while not stop.is_set():
            if not self._ready():
                stop.wait(IDLE_CHECK_S)
                continue
            try:
                self._listen(stop)
                backoff.reset()
            except NotAuthorised:  # refused after a refresh: logged out, nothing to listen to
                log.info("event stream refused: not logged in")
            except (httpx.HTTPError, PlatformError) as exc:
                log.info("event stream down: %s", type(exc).__name__)
            self.connected = False
            if stop.wait(backoff.next_delay()):
                return

    def _listen(self, stop: threading.Event) -> None:
        """One connection, until the server ends it (bearer refresh and retry: ``PlatformHttp``)."""
        with self._http.stream("GET", PATH, "event stream", params={"topics": self._topics},
                               headers={"Accept": "text/event-stream"}, timeout=self._timeout) as response:
            self.connected = True
            for name, data in parse_events(response.iter_lines()):
                if stop.is_set():
                    break
                if name in TOPICS:
                    self._deliver(name, data)

    def _deliver(self, name: str, data: str) -> None:
        try:
            payload = json.loads(data)
        except ValueError:
            log.warning("event stream: %s event is not JSON", name)
            return
        try:
            self._on_event(name, payload)
        except Exception as exc:
            log.warning("event stream: %s handler failed: %s", name, type(exc).__name__)
