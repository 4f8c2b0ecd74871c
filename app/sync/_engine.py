"""The app's one sync engine: features register what they send and pull; one background
thread runs them whatever screen is open."""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlite_utils

from app.platform import NotAuthorised, PlatformError
from app.sync._stream import EventStream

if TYPE_CHECKING:  # the link builds the engine; importing it here would be a cycle
    from app.connection import PlatformLink

log = logging.getLogger(__name__)  # feature names and error kinds only, never payloads or tokens

Clock = Callable[[], float]


@dataclass
class SyncContext:
    """What a feature's ``sync`` gets: the engine thread's own store connection (SQLite
    connections are per thread), the platform link (URL, tenant, session, device keys) and a
    place to keep objects between rounds (``memo``), e.g. a client built once."""

    db: sqlite_utils.Database
    link: PlatformLink
    _memo: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]


def _nothing_pending(db: sqlite_utils.Database) -> int:
    return 0


MIN_RUN_GAP_S = 1.0  # no feature runs again sooner, whatever it asks: a loop must never hammer the platform


@dataclass(frozen=True, slots=True)
class RunAgainIn:
    """What a feature's ``sync`` returns to run again sooner than its interval (e.g. while a
    ride is under way). A type of its own: a bare number from ``sync`` (say, a count of changes
    pulled) once read as "0 seconds" and pulled in a loop."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Feature:
    """One thing the app keeps in step with the platform.

    ``sync(ctx)`` sends what waits and pulls what changed; it raises ``PlatformError`` (or
    ``OSError``) when the platform cannot be reached or refuses, and must be safe to repeat
    after a failure at any point (send by idempotency key, pull from a stored cursor).
    ``sync`` may return ``RunAgainIn(seconds)`` to run sooner (e.g. while a ride is active;
    never sooner than ``MIN_RUN_GAP_S``); anything else means ``interval_s``. ``pending(db)``
    counts local writes not yet acknowledged (for the screens). An event on one of its
    ``topics`` runs it at once, or is handed to ``on_event`` when it can apply the event's data
    itself.
    """

    name: str
    sync: Callable[[SyncContext], RunAgainIn | None]
    pending: Callable[[sqlite_utils.Database], int] = _nothing_pending
    interval_s: float = 60.0  # how often to run with nothing kicked, while it succeeds
    needs_login: bool = True  # public pulls (shelter status, alerts) run logged out too
    enabled: Callable[[SyncContext], bool] = lambda ctx: True  # e.g. the desk only for staff
    topics: tuple[str, ...] = ()  # event-stream topics that concern it (``app.sync.TOPICS``)
    # Applies one event's data on the engine thread; returns False when only a whole sync will
    # do. Without it an event runs the feature at once.
    on_event: Callable[[SyncContext, dict[str, Any]], bool] | None = None


@dataclass(frozen=True, slots=True)
class FeatureState:
    """What screens show per feature; times are epoch seconds."""

    name: str
    pending: int = 0
    last_success_at: float | None = None
    last_attempt_at: float | None = None
    last_error: str | None = None  # safe for the UI: kind and status, never bodies or tokens
    next_try_at: float | None = None
    running: bool = False
    failures: int = 0  # consecutive retryable failures (backoff grows with them)
    waiting_for_login: bool = False

    @property
    def offline(self) -> bool:
        """The last attempt could not reach the platform (or it failed): retrying with backoff."""
        return self.failures > 0


class SyncEngine:
    """Runs registered features in one background thread.

    A feature runs when kicked (``kick(name)`` right after a local write), every
    ``interval_s`` while it succeeds, and after a failure with exponential backoff and full
    jitter, capped at ``backoff_cap_s`` (and at least the server's Retry-After). When one
    feature reaches the platform again, every feature waiting in backoff is tried at once.
    While an account is logged in, a second thread listens to the platform's event stream and
    hands each event to the features registered for its topic (``deliver``).
    """

    def __init__(self, open_db: Callable[[], sqlite_utils.Database], link: PlatformLink, *,
                 backoff_base_s: float = 2.0, backoff_cap_s: float = 60.0, clock: Clock = time.time,
                 rng: random.Random | None = None) -> None:
        self._open_db, self._link = open_db, link
        self.backoff_base_s, self.backoff_cap_s, self._clock = backoff_base_s, backoff_cap_s, clock
        self._rng = rng or random.Random()
        self._features: dict[str, Feature] = {}
        self._states: dict[str, FeatureState] = {}
        self._due: dict[str, float] = {}
        self._kicked: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: SyncContext | None = None
        self._observers: list[Callable[[dict[str, FeatureState]], None]] = []
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._stream: EventStream | None = None

    # -- registration ----------------------------------------------------------------------------
    def register(self, feature: Feature) -> None:
        """Add a feature (before or after ``start``); it runs first at once."""
        with self._lock:
            if feature.name in self._features:
                raise ValueError(f"sync feature {feature.name!r} is registered twice")
            self._features[feature.name] = feature
            self._states[feature.name] = FeatureState(feature.name)
            self._due[feature.name] = 0.0
        self._wake.set()

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self._features)

    # -- running -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Run in a daemon thread until ``stop()``; its store connection is its own. With a
        platform link, listen to its event stream in a second thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="mamori-sync", daemon=True)
        self._thread.start()
        if self._link.http is not None:
            self._stream = EventStream(self._link.http, on_event=self.deliver, ready=lambda: self._link.logged_in)
            threading.Thread(target=self._stream.run, args=(self._stop,), name="mamori-events", daemon=True).start()

    @property
    def live(self) -> bool:
        """The event stream is connected: changes arrive within seconds, not at the next poll."""
        return bool(self._stream and self._stream.connected)

    def deliver(self, topic: str, data: dict[str, Any]) -> None:
        """An event from the platform (any thread): the engine thread applies it next."""
        with self._lock:
            self._events.append((topic, data))
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def kick(self, feature: str | None = None) -> None:
        """Run ``feature`` (every feature with None) now, e.g. right after a local write.
        Unknown names are ignored, so a screen may kick before its feature is registered."""
        with self._lock:
            self._kicked |= set(self._features) if feature is None else {feature}
        self._wake.set()

    def run_due(self, *, everything: bool = False) -> dict[str, str | None]:
        """One round in the calling thread (the background loop calls it; tests and tools may):
        run what is due (or ``everything``); returns each run feature's error (None: success)."""
        ctx = self._context()
        self._apply_events(ctx)
        now = self._clock()
        with self._lock:
            kicked, self._kicked = self._kicked, set()
            due = [f for f in self._features.values() if everything or f.name in kicked or self._due[f.name] <= now]
        outcome = {}
        for feature in due:
            if self._stop.is_set():
                break
            outcome[feature.name] = self._run_one(feature, ctx)
        return outcome

    def _apply_events(self, ctx: SyncContext) -> None:
        """Hand waiting events to their features; a feature that cannot apply one runs now."""
        with self._lock:
            events, self._events = self._events, []
            features = list(self._features.values())
        for topic, data in events:
            for feature in (f for f in features if topic in f.topics):
                if feature.on_event is None or not self._runnable(feature, ctx):
                    self.kick(feature.name)
                    continue
                try:
                    applied = feature.on_event(ctx, data)
                except Exception as exc:
                    log.info("sync feature %s: event not applied: %s", feature.name, describe(exc))
                    applied = False
                if applied:
                    self._update(feature.name, last_success_at=self._clock())
                else:
                    self.kick(feature.name)

    def _runnable(self, feature: Feature, ctx: SyncContext) -> bool:
        return self._link.configured and (self._link.logged_in or not feature.needs_login) and feature.enabled(ctx)

    def _context(self) -> SyncContext:
        if self._ctx is None:
            self._ctx = SyncContext(self._open_db(), self._link)
        return self._ctx

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:
                log.exception("sync round failed")
            with self._lock:
                wait = max(0.0, min(self._due.values(), default=60.0) - self._clock()) if not self._kicked else 0.0
            self._wake.wait(min(wait, 60.0))
            self._wake.clear()

    def _run_one(self, feature: Feature, ctx: SyncContext) -> str | None:
        if not self._runnable(feature, ctx):
            self._finish(feature, ctx, waiting_for_login=feature.needs_login and not self._link.logged_in)
            return None
        self._update(feature.name, running=True, last_attempt_at=self._clock())
        try:
            result = feature.sync(ctx)
        except Exception as exc:
            return self._failed(feature, ctx, exc)
        came_back = self._states[feature.name].failures > 0
        delay = max(MIN_RUN_GAP_S, result.seconds) if isinstance(result, RunAgainIn) else None
        self._finish(feature, ctx, delay=delay, last_success_at=self._clock(), last_error=None, failures=0)
        if came_back:  # the platform is reachable again: the others need not wait out their backoff
            with self._lock:
                self._kicked |= {name for name, s in self._states.items() if s.failures}
        return None

    def _failed(self, feature: Feature, ctx: SyncContext, exc: Exception) -> str:
        text = describe(exc)
        retry = _retryable(exc)
        if not isinstance(exc, (PlatformError, OSError)):
            log.exception("sync feature %s failed", feature.name)
        else:
            log.warning("sync feature %s: %s", feature.name, text)
        failures = self._states[feature.name].failures + 1 if retry else 0
        delay = self._backoff(failures, exc) if retry else feature.interval_s
        self._finish(feature, ctx, last_error=text, failures=failures, delay=delay)
        return text

    def _backoff(self, failures: int, exc: Exception) -> float:
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(failures - 1, 32))
        retry_after = exc.retry_after if isinstance(exc, PlatformError) and exc.retry_after else 0.0
        return max(self._rng.uniform(ceiling / 2, ceiling), retry_after)

    def _finish(self, feature: Feature, ctx: SyncContext, *, delay: float | None = None, **changes: Any) -> None:
        try:
            pending = feature.pending(ctx.db)
        except Exception:
            log.exception("sync feature %s: pending count failed", feature.name)
            pending = self._states[feature.name].pending
        next_at = self._clock() + (feature.interval_s if delay is None else delay)
        with self._lock:
            self._due[feature.name] = next_at
        changes.setdefault("waiting_for_login", False)
        self._update(feature.name, running=False, pending=pending, next_try_at=next_at, **changes)

    def _update(self, name: str, **changes: Any) -> None:
        with self._lock:
            self._states[name] = replace(self._states[name], **changes)
            snapshot = dict(self._states)
        for observer in list(self._observers):
            try:
                observer(snapshot)
            except Exception:
                log.info("sync observer failed; it stays subscribed until it unsubscribes")

    # -- state for screens ---------------------------------------------------------------------------
    def state(self, feature: str | None = None) -> dict[str, FeatureState]:
        """Per feature: pending count, last success, last error, next try (a copy)."""
        with self._lock:
            return {n: s for n, s in self._states.items() if feature is None or n == feature}

    def feature_state(self, name: str) -> FeatureState | None:
        with self._lock:
            return self._states.get(name)

    def subscribe(self, observer: Callable[[dict[str, FeatureState]], None]) -> Callable[[], None]:
        """Call ``observer(states)`` on every change (from the sync thread); returns unsubscribe.
        Screens redraw through their page (e.g. ``page.run_thread(shell.render)``)."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)
        return unsubscribe


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, NotAuthorised):
        return True  # the session may refresh (or the resident log in again); try later
    if isinstance(exc, PlatformError):
        return exc.retryable
    return True  # OSError, a login refresh that could not reach the provider, or a bug: back off


def describe(exc: Exception) -> str:
    """Error text safe for the UI and logs: the kind and status line, never bodies or tokens."""
    if isinstance(exc, NotAuthorised):
        return "login required"
    if isinstance(exc, PlatformError):
        return str(exc)[:300]
    return type(exc).__name__
