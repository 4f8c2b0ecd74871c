"""The shell's one route table: every route resolves to its screen, parameters included, and
every screen builds from state alone (no platform)."""
from __future__ import annotations

import flet as ft

from tests.fakes import FakeShell
from views.contract import resolve
from views.shell import ROUTES, Shell, is_pushed


def test_patterns_are_unique_and_parameters_are_passed() -> None:
    patterns = [r.pattern for r in ROUTES]
    assert len(patterns) == len(set(patterns))
    route, params = resolve(ROUTES, "/shelters/map/designated_shelter/123")
    assert route.build is Shell._shelter_map and params == {"kind": "designated_shelter", "id": "123"}
    route, params = resolve(ROUTES, "/shelters/designated_shelter/123/")
    assert route.build is Shell._shelter_detail and params == {"kind": "designated_shelter", "id": "123"}
    assert resolve(ROUTES, "/family/proxy/abc")[1] == {"person": "abc"}
    assert resolve(ROUTES, "/checkin/desk/unknown") is None and resolve(ROUTES, "/nowhere") is None


def test_every_feature_screen_builds_from_state(app) -> None:
    shell = FakeShell(app)
    for route in ROUTES:
        if "{" in route.pattern or route.build.__qualname__.startswith("Shell."):
            continue  # the shell's own screens need a page (maps, geolocation); browser tests open them
        built = shell.open(route.pattern)
        assert isinstance(built, (ft.View, list)), route.pattern
        if isinstance(built, ft.View):
            assert built.route == route.pattern and built.controls, route.pattern


def test_tabs_stand_alone_and_every_other_route_is_pushed_on_top() -> None:
    assert not any(is_pushed(r) for r in ("/", "", "/home", "/family", "/settings/"))
    assert all(is_pushed(r) for r in ("/checkin", "/checkin/desk", "/hazard/map", "/family/proxy/abc"))
