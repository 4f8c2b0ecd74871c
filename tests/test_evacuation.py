"""app.evacuation.Evacuation's warm-up: one background build of the router, which can wait for a
page's first frame and starts at once when something asks for a route."""
from __future__ import annotations

import threading

from app.evacuation import Evacuation
from offline.atrest import new_key


def test_a_waiting_warm_up_starts_at_once_when_a_route_is_asked_for(ube_db, ube):
    evacuation = Evacuation(ube_db, ube.code, new_key())
    built = threading.Event()
    evacuation.warm_up(on_ready=built.set, after_s=600)  # no home: after the first frame
    assert not evacuation.ready
    evacuation.hurry()  # a home is set: now
    assert built.wait(60), "the waiting build never started"
    assert evacuation.ready


def test_one_build_and_each_caller_hears_when_it_is_ready(ube_db, ube):
    evacuation = Evacuation(ube_db, ube.code, new_key())
    heard: list[str] = []
    done = threading.Event()
    evacuation.warm_up(on_ready=lambda: heard.append("first"))
    evacuation.warm_up(on_ready=lambda: (heard.append("second"), done.set()))
    assert done.wait(60)
    router = evacuation.router
    evacuation.warm_up(on_ready=lambda: heard.append("late"))  # built already: told at once
    assert sorted(heard) == ["first", "late", "second"]
    assert evacuation.router is router
