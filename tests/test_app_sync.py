"""The app's sync engine on its own: scheduling, backoff, kicks, per-feature state, the thread.
Features here are small real functions; the link is a real PlatformLink to a closed port."""
from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from app.connection import PlatformLink
from app.devicekeys import MemoryKeyStore
from app.platform import PlatformError, PlatformUnavailable
from app.sync import MIN_RUN_GAP_S, Feature, FeatureState, RunAgainIn, SyncContext, SyncEngine
from offline.store import open_store

CLOSED = "http://127.0.0.1:9"  # nothing listens: every request fails to connect


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def link(tmp_path: Path) -> PlatformLink:
    db = open_store(tmp_path / "app.sqlite")
    return PlatformLink(tmp_path / "app.sqlite", db, MemoryKeyStore(), CLOSED, "352021")


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def engine(link, clock, tmp_path) -> SyncEngine:
    return SyncEngine(lambda: open_store(tmp_path / "app.sqlite"), link, backoff_base_s=2.0, backoff_cap_s=60.0,
                      clock=clock, rng=random.Random(7))


class Flaky:
    """A feature body that fails while ``down`` is set, and counts its runs."""

    def __init__(self) -> None:
        self.down, self.runs = True, 0

    def __call__(self, ctx: SyncContext) -> None:
        self.runs += 1
        if self.down:
            raise PlatformUnavailable("test: platform unreachable (ConnectError)")


def test_failures_back_off_exponentially_with_jitter_up_to_the_cap(engine, clock) -> None:
    body = Flaky()
    engine.register(Feature("f", body, needs_login=False))
    delays = []
    for _ in range(8):
        clock.now = engine.state()["f"].next_try_at or clock.now
        assert engine.run_due() == {"f": "test: platform unreachable (ConnectError)"}
        delays.append(engine.state()["f"].next_try_at - clock.now)
    for n, delay in enumerate(delays, start=1):
        ceiling = min(60.0, 2.0 * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] >= 30.0 and engine.state()["f"].failures == 8 and engine.state()["f"].offline
    assert engine.run_due() == {}  # not due yet: nothing runs


def test_a_kick_runs_at_once_and_a_success_wakes_the_others_in_backoff(engine, clock) -> None:
    first, second = Flaky(), Flaky()
    engine.register(Feature("first", first, needs_login=False))
    engine.register(Feature("second", second, needs_login=False))
    engine.run_due()
    assert engine.state()["second"].failures == 1
    first.down = second.down = False
    engine.kick("first")
    assert engine.run_due() == {"first": None}  # kicked, though its backoff had not run out
    state = engine.state()["first"]
    assert state.last_success_at == clock.now and state.failures == 0 and state.last_error is None
    assert engine.run_due() == {"second": None}  # the platform is back: no waiting out the backoff


def test_refusals_wait_the_interval_and_a_sync_may_ask_to_run_sooner(engine, clock) -> None:
    def refused(ctx: SyncContext) -> None:
        raise PlatformError("test: HTTP 400 Bad Request", status=400)

    engine.register(Feature("refused", refused, needs_login=False, interval_s=45.0))
    engine.register(Feature("busy", lambda ctx: RunAgainIn(3.0), needs_login=False, interval_s=60.0))
    engine.register(Feature("eager", lambda ctx: RunAgainIn(0.0), needs_login=False, interval_s=60.0))
    engine.register(Feature("counts", lambda ctx: 0, needs_login=False, interval_s=60.0))  # type: ignore[arg-type,return-value]
    engine.run_due()
    state = engine.state()
    assert state["refused"].failures == 0 and state["refused"].next_try_at == clock.now + 45.0
    assert state["refused"].last_error == "test: HTTP 400 Bad Request"
    assert state["busy"].next_try_at == clock.now + 3.0
    assert state["eager"].next_try_at == clock.now + MIN_RUN_GAP_S  # never a loop, whatever it asks
    # A bare number is not a schedule: a count of changes pulled (0) once meant "again at once".
    assert state["counts"].next_try_at == clock.now + 60.0


def test_logged_out_features_wait_and_pending_counts_show(engine, link) -> None:
    runs = []
    engine.register(Feature("mine", runs.append, pending=lambda db: 2))
    engine.register(Feature("public", runs.append, needs_login=False))
    seen: list[dict[str, FeatureState]] = []
    unsubscribe = engine.subscribe(seen.append)
    engine.run_due()
    unsubscribe()
    assert len(runs) == 1  # only the public one: nobody is logged in
    assert engine.state()["mine"] == FeatureState("mine", pending=2, next_try_at=engine.state()["mine"].next_try_at,
                                                  waiting_for_login=True)
    assert seen and seen[-1]["public"].last_success_at is not None
    with pytest.raises(ValueError, match="registered twice"):
        engine.register(Feature("mine", runs.append))


def test_the_background_thread_runs_kicked_features_and_stops(link, tmp_path) -> None:
    engine = SyncEngine(lambda: open_store(tmp_path / "app.sqlite"), link)
    ran = threading.Event()
    engine.register(Feature("f", lambda ctx: ran.set(), needs_login=False, interval_s=3600))
    engine.start()
    try:
        assert ran.wait(30)  # the first round runs at once
        ran.clear()
        engine.kick("f")
        assert ran.wait(30)  # and again when kicked, long before its interval
    finally:
        engine.stop()
    assert engine.state()["f"].last_success_at is not None


def test_the_links_own_features_report_an_unreachable_platform(link) -> None:
    link.sync.run_due()
    state = link.sync.state()
    assert {"outbox", "shelter_status", "alerts"} <= set(state)
    assert state["shelter_status"].offline and "unreachable" in (state["shelter_status"].last_error or "")
    assert state["outbox"].waiting_for_login  # sending needs a login; public pulls do not
