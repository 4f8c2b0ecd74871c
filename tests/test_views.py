"""Screens built from state, asserted on the control tree (no browser needed)."""
from __future__ import annotations

import dataclasses

import flet as ft
import flet_map as fm
import pytest

from geo.models import LatLon
from protocol.hazards import HazardType, ShelterKind
from views import home, settings, shelters
from views.map import MapScreen, fit_zoom
from views.widgets import local_time


def walk(controls):
    """Every control below ``controls``, depth first, in screen order."""
    stack = list(reversed(controls))
    while stack:
        c = stack.pop()
        if c is None:
            continue
        yield c
        children = []
        for f in dataclasses.fields(c):
            if f.name.startswith("_") or f.name in ("parent", "page"):
                continue
            value = getattr(c, f.name, None)
            if isinstance(value, ft.BaseControl):
                children.append(value)
            elif isinstance(value, list):
                children.extend(v for v in value if isinstance(v, ft.BaseControl))
        stack.extend(reversed(children))


def texts(controls) -> list[str]:
    return [c.value for c in walk(controls) if isinstance(c, ft.Text) and isinstance(c.value, str)]


def spoken(controls, kind: type | tuple[type, ...]):
    """Each ``kind`` control below ``controls`` with the name a screen reader hears: its own
    label, or the texts merged with it (``views.widgets.labelled``)."""
    for c in walk(controls):
        if isinstance(c, ft.MergeSemantics):
            if (inner := next((x for x in walk([c.content]) if isinstance(x, kind)), None)) is not None:
                yield inner, " ".join(texts([c.content]))
        elif isinstance(c, kind) and getattr(c, "label", None):
            yield c, c.label


def choices(controls) -> list[tuple[str, str]]:
    """(value, spoken name) of every radio below ``controls``."""
    return [(radio.value, name) for radio, name in spoken(controls, ft.Radio)]


def named(controls, kind: type | tuple[type, ...], label: str):
    """The ``kind`` control a screen reader names ``label``."""
    if (found := next((c for c, name in spoken(controls, kind) if name == label), None)) is not None:
        return found
    raise LookupError(f"no {kind} named {label!r}")


def unlabelled(controls) -> list[ft.BaseControl]:
    """Interactive controls a screen reader could not name."""
    bad, labelled_by_semantics = [], set()
    for c in walk(controls):
        if (isinstance(c, ft.Semantics) and c.label) or (isinstance(c, ft.MergeSemantics) and texts([c.content])):
            labelled_by_semantics |= {id(x) for x in walk([c.content])}
    for c in walk(controls):
        if id(c) in labelled_by_semantics:
            continue
        if (isinstance(c, (ft.IconButton, ft.GestureDetector))
                or (isinstance(c, (ft.TextField, ft.Switch, ft.Radio)) and not c.label)
                or (isinstance(c, ft.Checkbox) and not (c.label or c.semantics_label))
                or (isinstance(c, ft.Button) and not (c.content if isinstance(c.content, str) else texts([c.content])))
                or (isinstance(c, ft.Chip) and not texts([c.label]))):
            bad.append(c)
    return bad


def nav(*_):
    pass


def test_home_shows_region_freshness_and_alert_place(app):
    controls = home.build(app, nav)
    all_text = " ".join(texts(controls))
    assert "山口県宇部市" in all_text
    assert "道路（歩行者ネットワーク）: 30750件" in all_text
    assert any(c.key == "alert-area" for c in walk(controls))
    assert not unlabelled(controls)


def _alert_area_text(app) -> str:
    area = next(c for c in walk(home.build(app, nav)) if c.key == "alert-area")
    return " ".join(texts([area]))


def test_home_alert_place_says_why_no_alert_shows(app, monkeypatch):
    from app.sync import Freshness, SyncState

    assert app.t("home.alerts.no_platform") in _alert_area_text(app)  # no platform: none can arrive
    monkeypatch.setattr(type(app.link), "configured", property(lambda self: True))
    monkeypatch.setattr(app.link, "state", lambda: None)
    assert app.t("home.alerts.not_received") in _alert_area_text(app)  # never pulled
    checked = Freshness("alerts", "2026-11-22T02:10:48+00:00", "2026-11-22T02:10:48+00:00", None, 0)
    monkeypatch.setattr(app.link, "state", lambda: SyncState(0, 0, None, None, {"alerts": checked}))
    text = _alert_area_text(app)
    assert app.t("home.alerts.none", when=local_time(checked.last_success_at)) in text
    # The next check failed: Home no longer says "no alert" but that it cannot reach the platform.
    failed = Freshness("alerts", checked.last_success_at, "2026-11-22T02:12:00+00:00", "platform unreachable", 0)
    monkeypatch.setattr(app.link, "state", lambda: SyncState(0, 0, None, None, {"alerts": failed}))
    controls = home.build(app, nav)
    assert not [c for c in walk(controls) if c.key == "alert-area"]
    warning = " ".join(texts([c for c in walk(controls) if c.key == "alert-unreachable"]))
    assert app.t("home.alerts.unreachable", when=local_time(checked.last_success_at)) in warning and "防災行政無線" in warning


def test_home_lists_nearest_suitable_sites_once_home_is_set(app):
    app.set_home(LatLon(33.9513, 131.2470))
    app.set_hazard(HazardType.TSUNAMI)
    tiles = [c for c in walk(home.build(app, nav)) if isinstance(c, ft.ListTile)]
    assert len(tiles) == 3
    expected = [h.shelter.name for h in app.shelters.nearest(LatLon(33.9513, 131.2470), 3, HazardType.TSUNAMI)]
    assert sorted(t.title.value for t in tiles) == sorted(expected)


def test_shelter_list_filter_count_and_labels(app):
    f = shelters.ShelterFilter(hazard=HazardType.TSUNAMI)
    controls = shelters.build_list(app, f, nav, nav)
    count = next(c for c in walk(controls) if c.key == "shelter-count")
    assert count.value == f"{app.shelters.count(HazardType.TSUNAMI)}件"
    selected = [texts([c.label])[0] for c in walk(controls) if isinstance(c, ft.Chip) and c.selected]
    assert "津波" in selected
    assert not unlabelled(controls)


def test_shelter_list_in_english(app):
    app.update_prefs(language="en")
    controls = shelters.build_list(app, shelters.ShelterFilter(), nav, nav)
    assert "170 found" in texts(controls)
    assert "Tsunami" in " ".join(texts(controls))


def test_detail_shows_capacity_suitability_and_source(app):
    s = next(h.shelter for h in app.shelters.search("鵜の島ふれあいセンター", kind=ShelterKind.EMERGENCY_SITE))
    all_text = " ".join(texts(shelters.build_detail(app, s, nav)))
    assert "収容人数: 100人" in all_text
    assert "津波: 対応" in all_text and "洪水: 対象外" in all_text
    assert "出典: 国土地理院" in all_text and ".geojson" not in all_text  # the credit, never a file name


def test_designated_shelter_detail_says_not_assessed(app):
    s = app.shelters.search(kind=ShelterKind.DESIGNATED_SHELTER)[0].shelter
    assert any("公表データに含まれていません" in t for t in texts(shelters.build_detail(app, s, nav)))


def test_detail_links_the_same_facility_listed_as_the_other_kind(app):
    s = next(h.shelter for h in app.shelters.search("鵜の島ふれあいセンター", kind=ShelterKind.DESIGNATED_SHELTER))
    routes = []
    button = next(
        c for c in walk(shelters.build_detail(app, s, routes.append))
        if isinstance(c, ft.Button) and c.content == "指定緊急避難場所としての安全性を見る"
    )
    button.on_click(None)
    twin = app.shelters.same_place(s)
    assert routes == [f"/shelters/emergency_site/{twin.id}"] and twin.kind is ShelterKind.EMERGENCY_SITE


def test_map_draws_every_shelter_roads_and_home(app):
    app.set_home(LatLon(33.95, 131.25))
    screen = MapScreen(app, nav, nav)
    markers = screen.markers.markers
    assert len(markers) == 170 + 1
    layers = screen.map.layers
    roads = next(layer for layer in layers if isinstance(layer, fm.PolylineLayer))
    assert 150 < len(roads.polylines) < 2500
    assert not unlabelled(screen.controls())


def test_map_tap_then_set_home(app):
    screen = MapScreen(app, nav, nav)
    screen._on_tap(type("E", (), {"coordinates": fm.MapLatitudeLongitude(33.96, 131.24)})())
    assert any(c.key == "tapped-point" for c in walk(screen.panel.controls))
    screen.tap_actions[0].run(screen.tapped)
    assert app.prefs.home == LatLon(33.96, 131.24)


def test_settings_controls_are_labelled(app):
    controls = settings.build(app, nav, nav, nav, nav, nav)
    radios = [c for c in walk(controls) if isinstance(c, ft.Radio)]
    assert {r.value for r in radios} >= {"ja", "en", "ja-easy", "352021", "072028"}
    assert {("ja", "日本語"), ("en", "English")} <= set(choices(controls))  # named by the tile's wrapping text
    assert not unlabelled(controls)


def test_about_credits_every_source(app):
    all_text = " ".join(texts(settings.build_about(app)))
    for credit in ("OpenStreetMap", "国土地理院", "国土数値情報（避難施設データ）", "行政区域データ"):
        assert credit in all_text


def test_large_text_scales_the_theme(app):
    from views.theme import make_theme

    normal = make_theme(app.prefs).text_theme.body_medium.size
    app.update_prefs(large_text=True)
    assert make_theme(app.prefs).text_theme.body_medium.size > normal * 1.3


def test_data_dir_must_hold_a_region(app, tmp_path, data_dir):
    from geo.regions import RegionNotFound

    with pytest.raises(RegionNotFound):
        app.set_data_dir(tmp_path)
    assert app.data_dir == data_dir
    assert [r.code for r in app.set_data_dir(data_dir)] == ["072028", "352021"]
    assert app.prefs.data_dir == str(data_dir)


def test_switch_region_imports_aizu(app):
    app.switch_region("072028")
    assert app.summary().name == "福島県会津若松市"
    assert app.shelters.count() == 301 and app.roads().strokes == ()
    assert app.prefs.region == "072028"


def test_home_location_is_sealed_at_rest(app, ube_db):
    app.set_home(LatLon(33.951234, 131.247654))
    raw = " ".join(str(v) for (v,) in ube_db.execute("SELECT value FROM setting"))
    assert "33.951234" not in raw and "131.247654" not in raw
    from app.preferences import load_preferences

    assert load_preferences(ube_db, app._at_rest_key).home == LatLon(33.951234, 131.247654)
    assert load_preferences(ube_db, None).home is None
    assert load_preferences(ube_db, bytes(32)).home is None  # wrong key: unknown, not a crash


def account_screen(app, pending=None, calls=None):
    from views import account

    calls = calls if calls is not None else []
    return account.build(
        app,
        app.link,
        login=lambda: calls.append("login"),
        logout=lambda: calls.append("logout"),
        set_consent=lambda c, g: calls.append((c, g)),
        pending_revoke=pending,
        ask_revoke=lambda c: calls.append(("ask", c)),
        message=None,
    )


def test_account_without_platform_says_nothing_leaves_the_device(app):
    controls = account_screen(app)
    assert any(c.key == "no-platform" for c in walk(controls))
    from app.consent import DataCategory

    switches = [named(controls, ft.Switch, app.t(f"consent.{c.value}.title")) for c in DataCategory]
    assert len(switches) == len([c for c in walk(controls) if isinstance(c, ft.Switch)])
    assert not any(s.value for s in switches)
    assert not unlabelled(controls)


def test_consent_grant_is_recorded_and_revoke_asks_first(app):
    from app.consent import DataCategory

    app.link.set_consent(DataCategory.SAFETY_STATUS, True)
    calls = []
    controls = account_screen(app, calls=calls)
    switch = next(c for c in walk(controls) if isinstance(c, ft.Switch) and c.value)
    switch.value = False
    switch.on_change(type("E", (), {"control": switch})())
    assert calls == [("ask", DataCategory.SAFETY_STATUS)]  # not revoked until confirmed
    confirm = account_screen(app, pending=DataCategory.SAFETY_STATUS)
    assert any(c.key == "revoke-confirm-safety_status" for c in walk(confirm))
    app.link.set_consent(DataCategory.SAFETY_STATUS, False)
    assert [e.action for e in app.link.history()] == ["grant", "revoke"]
    assert len([t for t in texts(account_screen(app)) if "安否" in t]) >= 2


def hazard_screen(app, screen=None, routes=None):
    from views import hazard

    return hazard.build(
        app,
        screen or hazard.HazardScreen(),
        on_hazard=app.set_hazard,
        on_origin=lambda o: None,
        locate=lambda: None,
        find_route=lambda: None,
        navigate=(routes.append if routes is not None else nav),
    )


def test_my_hazard_labels_the_scenario_and_answers_for_home(app):
    app.set_hazard(HazardType.TSUNAMI)
    app.set_home(LatLon(33.945, 131.25))  # low ground near the port: inside the 5 m scenario
    controls = hazard_screen(app)
    all_text = " ".join(texts(controls))
    assert "想定シナリオ（公式のハザードマップではありません）" in all_text
    card = next(c for c in walk(controls) if c.key == "advice-home")
    assert "自宅: 避難が必要です" in texts([card])
    assert not unlabelled(controls)


def test_my_hazard_route_summary_with_time_and_alternatives(app):
    from views import hazard

    app.set_hazard(HazardType.TSUNAMI)
    app.set_home(LatLon(33.945, 131.25))
    route = app.evacuation.route(app.prefs.home, HazardType.TSUNAMI)
    controls = hazard_screen(app, hazard.HazardScreen(route=route))
    result = next(c for c in walk(controls) if c.key == "route-result")
    distance = next(c for c in walk(controls) if c.key == "route-distance")
    assert route.shelter.name == result.value and distance.value.startswith("徒歩 ") and "（自宅から・道路に沿って）" in distance.value
    assert route.shelter.suits(HazardType.TSUNAMI)
    assert len(route.alternatives) == 3
    # The other shelters are buttons, sorted by walking time, each saying what its distance is.
    alternatives = [c for c in walk(controls) if str(c.key).startswith("alt-")]
    assert [c.key for c in alternatives] == [f"alt-{a.shelter.id}" for a in sorted(route.alternatives, key=lambda a: a.walking_time_s)]
    assert all("徒歩 " in c.content for c in alternatives)


def test_home_answers_first_with_verdict_nearest_open_shelter_and_one_tap_route(app):
    app.set_hazard(HazardType.STORM_SURGE)
    app.set_home(LatLon(33.9420, 131.2480))  # the coastal home of issue 12
    _ = app.evacuation.router  # what the warm-up does at start (layers, then the street index)
    shown = []
    controls = home.build(app, nav, show_route=lambda place, route: shown.append((place, route)))
    keys = [c.key for c in walk(controls) if c.key]
    assert keys.index("advice-home") < keys.index("answer-shelter-card") < keys.index("alert-area")  # answer first
    card = next(c for c in walk(controls) if c.key == "advice-home")
    assert "自宅: 避難が必要です" in texts([card])
    distance = next(c for c in walk(controls) if c.key == "answer-distance").value
    assert distance.startswith("徒歩 ") and "自宅から" in distance
    next(c for c in walk(controls) if c.key == "answer-route").on_click(None)  # the one tap
    assert shown[0][0] == "home" and shown[0][1].path
    # Every straight-line distance says so, and from where.
    tiles = [c for c in walk(controls) if isinstance(c, ft.ListTile)]
    assert tiles and all(t.subtitle.value.startswith("直線距離 ") and "自宅から" in t.subtitle.value for t in tiles)


def test_home_skips_a_shelter_reported_closed(app):
    app.set_home(LatLon(33.9420, 131.2480))
    first = app.evacuation.route(app.prefs.home, HazardType.TSUNAMI)
    other = app.evacuation.nearest_open(app.prefs.home, HazardType.TSUNAMI, lambda s: s.id == first.shelter.id)
    assert other.shelter.id != first.shelter.id and other.path


def test_no_layer_answer_is_neutral_never_outside(app):
    app.set_hazard(HazardType.FLOOD)  # Ube has no flood layer
    app.set_home(LatLon(33.9420, 131.2480))
    card = next(c for c in walk(hazard_screen(app)) if c.key == "advice-home")
    assert "自宅: 分かりません（データなし）" in texts([card]) and "想定区域の外" not in " ".join(texts([card]))
    assert card.bgcolor == "#EEEEEE"


def test_aizu_route_falls_back_to_straight_line(app):
    from views import hazard

    app.switch_region("072028")
    route = app.evacuation.route(LatLon(37.4945, 139.9298), HazardType.EARTHQUAKE)
    assert route.straight_line
    all_text = " ".join(texts(hazard_screen(app, hazard.HazardScreen(route=route))))
    assert "直線距離" in all_text and "この地域の道路データがありません" in all_text


def test_household_changes_supplies_and_plan(app):
    from app.household import AgeBand, HouseholdMember, Mobility, plan_text
    from views import hazard

    saved = []
    household = app.evacuation.household()
    controls = hazard.build_household(app, household, saved.append)
    assert not unlabelled(controls)
    household.members = [HouseholdMember(AgeBand.ADULT),
                         HouseholdMember(AgeBand.SENIOR, mobility=Mobility.WHEELCHAIR), HouseholdMember(AgeBand.INFANT)]
    app.evacuation.save_household(household)
    assert app.evacuation.walking_speed() < 1.0
    labels = [c.semantics_label for c in walk(hazard.build_supplies(app, lambda k, v: None)) if isinstance(c, ft.Checkbox)]
    assert any(label.startswith("飲料水 27") for label in labels)  # 3 L × 3 people × 3 days
    assert any("おむつ" in label for label in labels)
    app.set_home(LatLon(33.945, 131.25))
    text = plan_text(app.evacuation.plan(HazardType.FLOOD, app.prefs.home), app.t)
    assert "警戒レベル3" in text


def test_household_counts_the_resident(app):
    from app.household import AgeBand
    from views import hazard

    saved = []
    controls = hazard.build_household(app, app.evacuation.household(), saved.append)
    assert any(t.startswith("1. あなた") for t in texts(controls))
    field = next(c for c in walk(controls) if isinstance(c, ft.TextField) and c.label == app.t("mh.member_label"))
    field.value = "祖母"
    next(c for c in walk(controls) if isinstance(c, ft.RadioGroup) and c.value == AgeBand.ADULT.value).value = AgeBand.SENIOR.value
    next(c for c in walk(controls) if isinstance(c, ft.Button) and c.content == app.t("mh.add")).on_click(None)
    assert saved[-1].people == 2 and [m.label for m in saved[-1].members] == ["あなた", "祖母"]


def test_household_is_sealed_at_rest(app, ube_db):
    from app.household import AgeBand, HouseholdMember

    household = app.evacuation.household()
    household.members = [HouseholdMember(AgeBand.SENIOR, medications=["ワーファリン"], label="祖母")]
    app.evacuation.save_household(household)
    raw = b"".join(bytes(str(row), "utf-8") for row in ube_db.execute("SELECT * FROM household"))
    assert "ワーファリン".encode() not in raw and "祖母".encode() not in raw
    assert app.evacuation.household().members[0].label == "祖母"


def test_hazard_map_draws_areas_and_the_route(app):
    from protocol.hazards import HazardType

    app.set_hazard(HazardType.TSUNAMI)
    route = app.evacuation.route(LatLon(33.945, 131.25), HazardType.TSUNAMI)
    screen = MapScreen(app, nav, nav, hazard_areas=app.evacuation.shapes, route=route)
    def drawn(hazard):  # unknown ground well above the water is not drawn
        return len([s for _, s in app.evacuation.shapes(hazard) if s.level > 0])

    assert len(screen.areas.polygons) == drawn(HazardType.TSUNAMI) > 100
    screen._set_hazard(HazardType.EARTHQUAKE)  # no area layer for earthquakes in Ube
    assert screen.areas.polygons == []
    screen._set_hazard(HazardType.STORM_SURGE)
    assert len(screen.areas.polygons) == drawn(HazardType.STORM_SURGE) > 100
    screen._toggle_areas(type("E", (), {"control": type("C", (), {"value": False})()})())
    assert screen.areas.polygons == []
    route_layer = [layer for layer in screen.map.layers if isinstance(layer, fm.PolylineLayer)][-1]
    assert len(route_layer.polylines) == 1 and len(route_layer.polylines[0].coordinates) == len(route.path)
    lats, lons = [p[0] for p in route.path], [p[1] for p in route.path]  # the whole route in view, centred
    assert screen.map.initial_center.latitude == pytest.approx((min(lats) + max(lats)) / 2)
    assert screen.map.initial_center.longitude == pytest.approx((min(lons) + max(lons)) / 2)
    assert screen.map.initial_zoom == fit_zoom(((min(lats), min(lons)), (max(lats), max(lons))), 360, 480)


def test_the_route_and_its_map_name_the_street_it_follows(app):
    from views import hazard

    app.set_hazard(HazardType.TSUNAMI)
    route = app.evacuation.route(LatLon(33.9528, 131.2417), HazardType.TSUNAMI)  # along 国道190号 (Ube's road data names it)
    controls = hazard_screen(app, hazard.HazardScreen(route=route))
    assert next(c for c in walk(controls) if c.key == "route-streets").value == "通る道: 国道190号"
    screen = MapScreen(app, nav, nav, hazard_areas=app.evacuation.shapes, route=route)
    labels = [m for m in screen.markers.markers if "国道190号" in texts([m.content])]
    assert len(labels) == 1 and (labels[0].coordinates.latitude, labels[0].coordinates.longitude) == route.streets[0].at


def test_shelter_list_and_detail_show_the_platforms_live_status(app, monkeypatch):
    s = next(h.shelter for h in app.shelters.search("鵜の島ふれあいセンター", kind=ShelterKind.EMERGENCY_SITE))
    pulled = [
        {
            "id": f"urn:ngsi-ld:EvacuationShelter:{s.id}",
            "type": "EvacuationShelter",
            "status": {"type": "Property", "value": "open"},
            "occupancy": {"type": "Property", "value": 42},
            "modifiedAt": "2026-11-22T05:02:00+00:00",
        },
        {"id": "urn:ngsi-ld:EvacuationShelter:X", "type": "EvacuationShelter"},  # no status yet: ignored
    ]
    monkeypatch.setattr(app.link, "entities", lambda name: pulled if name == "shelter_status" else [])
    assert set(app.link.shelter_statuses()) == {s.id}
    detail = " ".join(texts(shelters.build_detail(app, s, nav)))
    assert "開設中・42人" in detail and "時点・市の情報" in detail
    listing = " ".join(texts(shelters.build_list(app, shelters.ShelterFilter(text="鵜の島"), nav, nav)))
    assert "開設中・42人" in listing
