"""The app's one sync engine: every feature's sending and pulling, in the background, whatever
screen is open (no Flet here).

A feature registers once, at app start (``app.sync.features`` registers the built-in ones)::

    engine.register(Feature(
        "points",                          # the name screens look up in engine.state()
        sync=lambda ctx: sync_points(ctx), # send what waits, pull what changed; raise PlatformError
                                           # (or OSError) when the platform can't be reached or refuses;
                                           # may return RunAgainIn(seconds) to run sooner than interval_s
        pending=lambda db: count(db),      # local writes not yet acknowledged, for the screens
        interval_s=60,                     # pull cadence while it succeeds
        needs_login=True,                  # False for public pulls (shelter status, alerts)
        enabled=lambda ctx: True,          # e.g. only for staff accounts
    ))

``ctx.db`` is the engine thread's own store connection (never use the UI's), ``ctx.link`` the
platform link (URL, tenant, session, device keys), ``ctx.memo(key, build)`` keeps e.g. a client
between rounds. ``sync`` must be safe to repeat after a failure at any point.

After a local write a feature calls ``engine.kick("points")`` (the app's ``link.kick(name)``):
the feature runs at once when the platform can be reached, and with exponential backoff (full
jitter, capped) when not. Screens read ``engine.state()[name]`` (pending count, last success,
last error, next try) and ``engine.subscribe(observer)`` to redraw when it changes.

Features that can apply an event from the platform's event stream themselves register its
``topics`` and an ``on_event(ctx, data)``; others simply run when an event on their topic arrives.
The outbox and the public datasets (``OutboxSync``) are the link's own features.
"""
from app.sync._backoff import Backoff
from app.sync._engine import MIN_RUN_GAP_S, Feature, FeatureState, RunAgainIn, SyncContext, SyncEngine, describe
from app.sync._outbox import (
    ALERTS,
    SHELTER_STATUS,
    Dataset,
    Freshness,
    OutboxSync,
    PushReport,
    SyncState,
    cached_entities,
    read_state,
)
from app.sync._stream import TOPICS, EventStream, parse_events

__all__ = [
    "ALERTS",
    "MIN_RUN_GAP_S",
    "SHELTER_STATUS",
    "TOPICS",
    "Backoff",
    "Dataset",
    "EventStream",
    "Feature",
    "FeatureState",
    "Freshness",
    "OutboxSync",
    "PushReport",
    "RunAgainIn",
    "SyncContext",
    "SyncEngine",
    "SyncState",
    "cached_entities",
    "describe",
    "parse_events",
    "read_state",
]
