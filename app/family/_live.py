"""Live updates from the platform's event stream (``GET /cityos/v1/events``, server-sent events):
family statuses as they change, and a nudge when alerts or shelter counts change.

    feed = LiveFeed(link.http, on_event=handle)
    threading.Thread(target=feed.run, args=(stop,), daemon=True).start()

``on_event(topic, data)`` runs on the feed's thread: ``("family", {"groups": [{"id", "members"}]})``
or ``("alerts" | "shelters", {"seq": n})``. The feed reconnects with backoff; ``connected`` says
whether it is up, and ``poll_interval`` is how often to pull anyway (the fallback, and the
background cadence: every 30 s, every 10 s while an alert is active).
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from app.platform import NotAuthorised, PlatformError, PlatformHttp
from offline.sync import Backoff

log = logging.getLogger(__name__)  # error kinds only

PATH = "/cityos/v1/events"
TOPICS = ("family", "alerts", "shelters")
POLL_S = 30.0
POLL_ALERT_S = 10.0


def poll_interval(alert_active: bool) -> float:
    return POLL_ALERT_S if alert_active else POLL_S


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


class LiveFeed:
    def __init__(self, http: PlatformHttp, *, on_event: Callable[[str, dict[str, Any]], None],
                 topics: Sequence[str] = TOPICS, read_timeout: float = 45.0) -> None:
        self._http, self._on_event, self._topics = http, on_event, ",".join(topics)
        # The platform sends a comment every 15 s, so a silent read of 45 s means the link is gone.
        self._timeout = httpx.Timeout(10.0, read=read_timeout)
        self.connected = False

    def run(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set (noticed at the next event or ping)."""
        backoff = Backoff(base=1.0, cap=30.0)
        while not stop.is_set():
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
