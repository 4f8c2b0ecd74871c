"""My Hazard: must I evacuate, the route to a safe shelter, household, plan and supplies."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import flet as ft

from app.evacuation import Assessment
from app.household import AgeBand, Contact, Household, HouseholdMember, Mobility, Pet
from app.state import Mamori
from geo.hazards import EvacuationAdvice, HazardLayer
from geo.models import LatLon
from geo.routing import Alternative, RouteResult, RouteStatus, Street
from protocol.hazards import HazardType
from views.theme import verdict_colours
from views.widgets import age_words, format_distance, heading, helped, icon_action, labelled, notice, radio, text_field

ORIGINS = ("home", "position", "picked")
STREET_WORTH_M = 50.0  # a named street walked at least this far is named in the route and on its map


@dataclass(frozen=True, slots=True)
class HazardScreen:
    """What the My Hazard tab shows besides the app state: where from, and the last route."""

    origin: str = "home"
    route: RouteResult | None = None
    message: str | None = None

    def with_(self, **changes: object) -> HazardScreen:
        return replace(self, **changes)


def origin_point(app: Mamori, origin: str) -> LatLon | None:
    return {"home": app.prefs.home, "position": app.position, "picked": app.picked_point}[origin]


def minutes(seconds: float | None) -> int:
    return max(1, round((seconds or 0) / 60))


def hazard_chips(app: Mamori, on_hazard: Callable[[HazardType], None]) -> ft.Control:
    return ft.Row(
        [
            ft.Chip(label=ft.Text(app.t(f"hazard.{h.value}")), selected=h is app.prefs.hazard, on_select=lambda e, h=h: on_hazard(h))
            for h in HazardType
        ],
        wrap=True,
    )


def build(
    app: Mamori,
    screen: HazardScreen,
    *,
    on_hazard: Callable[[HazardType], None],
    on_origin: Callable[[str], None],
    locate: Callable[[], None],
    find_route: Callable[[], None],
    navigate: Callable[[str], None],
    choose: Callable[[Alternative], None] | None = None,
) -> list[ft.Control]:
    t = app.t
    hazard = app.prefs.hazard
    controls: list[ft.Control] = [heading(t("hazard.title")), ft.Text(t("mh.choose_hazard")), hazard_chips(app, on_hazard)]
    controls += layer_notes(app, hazard)
    if screen.message:
        controls.append(notice(screen.message, ft.Icons.INFO_OUTLINE, key="hazard-message"))
    for place in ORIGINS:
        point = origin_point(app, place)
        if point:
            controls.append(advice_card(app, app.evacuation.assess(place, point, hazard)))
    if not app.prefs.home:
        controls.append(ft.Text(t("mh.no_home")))
    controls += [
        ft.Text(t("mh.route_title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
        ft.RadioGroup(
            value=screen.origin,
            on_change=lambda e: on_origin(e.control.value),
            content=ft.Column([radio(o, t(f"mh.origin.{o}"), disabled=origin_point(app, o) is None) for o in ORIGINS]),
        ),
        ft.Row(
            [
                ft.Button(t("mh.locate"), icon=ft.Icons.MY_LOCATION, on_click=lambda e: locate()),
                ft.Button(t("mh.pick_on_map"), icon=ft.Icons.ADD_LOCATION_ALT, on_click=lambda e: navigate("/hazard/map")),
            ],
            wrap=True,
        ),
        ft.Text(t("mh.walking_speed", speed=f"{app.evacuation.walking_speed():.1f}")),
        ft.Button(
            t("mh.find_route"),
            icon=ft.Icons.DIRECTIONS_WALK,
            on_click=lambda e: find_route(),
            disabled=origin_point(app, screen.origin) is None,
        ),
    ]
    if screen.route:
        controls += route_summary(app, screen.route, screen.origin, navigate, choose)
    controls += [
        ft.Divider(),
        ft.Button(t("mh.household"), icon=ft.Icons.GROUPS, on_click=lambda e: navigate("/hazard/household")),
        ft.Button(t("mh.plan"), icon=ft.Icons.EVENT_NOTE, on_click=lambda e: navigate("/hazard/plan")),
        ft.Button(t("mh.supplies"), icon=ft.Icons.CHECKLIST, on_click=lambda e: navigate("/hazard/supplies")),
    ]
    return controls


def layer_notes(app: Mamori, hazard: HazardType) -> list[ft.Control]:
    t, lang = app.t, app.prefs.language
    layers = app.evacuation.layers(hazard)
    if not layers:
        return [notice(t("mh.no_layer"), ft.Icons.MAP_OUTLINED, key="no-hazard-layer")]
    return [
        notice(
            (t("mh.scenario") if layer.is_scenario else t("mh.official")) + " " + layer.description(lang) + "\n" + source_line(app, layer),
            ft.Icons.SCIENCE_OUTLINED if layer.is_scenario else ft.Icons.VERIFIED_OUTLINED,
            key=f"layer-{layer.id}",
        )
        for layer in layers
    ]


def source_line(app: Mamori, layer: HazardLayer) -> str:
    """Where a layer comes from and how old it is, in words (never a file name)."""
    source = app.t("mh.source.scenario") if layer.is_scenario else layer.licence.removeprefix("出典：")
    return app.t("mh.source", source=source, age=age_words(app, layer.created_at))


def verdict(advice: EvacuationAdvice) -> str:
    return "danger" if advice.must_evacuate else "outside" if advice.known else "unknown"


def advice_card(app: Mamori, assessment: Assessment) -> ft.Control:
    t, advice = app.t, assessment.advice
    kind = verdict(advice)
    bg, fg, border = verdict_colours(kind, app.prefs)
    key = {"danger": "mh.evacuate", "outside": "mh.no_need", "unknown": "mh.unknown"}[kind]
    icon = {"danger": ft.Icons.WARNING, "outside": ft.Icons.INFO_OUTLINE, "unknown": ft.Icons.HELP_OUTLINE}[kind]
    title = t(key, place=t(f"mh.place.{assessment.place}"))
    lines: list[ft.Control] = [
        ft.Row([ft.Icon(icon, color=fg), ft.Text(title, theme_style=ft.TextThemeStyle.TITLE_LARGE, weight=ft.FontWeight.BOLD,
                                                  color=fg, expand=True)]),
        ft.Text(t(advice.reason_key), color=fg),
    ]
    if advice.level_key:
        lines.append(ft.Text(t("mh.level", level=t(advice.level_key)), color=fg))
    if advice.is_scenario:
        lines.append(ft.Text(t("mh.scenario_basis"), theme_style=ft.TextThemeStyle.BODY_SMALL, color=fg))
    return ft.Container(
        ft.Column(lines, spacing=4),
        key=f"advice-{assessment.place}",
        padding=12,
        border_radius=8,
        bgcolor=bg,
        border=ft.Border.all(3 if kind == "danger" else 1, border),
    )


def distance_text(app: Mamori, route: RouteResult | Alternative, place: str) -> str:
    """What a distance is and from where: walking along the roads (with the time), or a straight
    line when there are no roads to follow."""
    t = app.t
    where = t(f"mh.place.{place}")
    if route.straight_line:
        return t("dist.straight_from", distance=format_distance(app, route.distance_m), place=where)
    return t("dist.walk_from", distance=format_distance(app, route.distance_m), minutes=minutes(route.walking_time_s), place=where)


def guiding_streets(route: RouteResult) -> list[Street]:
    """The named streets worth saying: those walked for a good stretch (a crossing does not help)."""
    return [s for s in route.streets if s.length_m >= STREET_WORTH_M]


def route_summary(app: Mamori, route: RouteResult, place: str, navigate: Callable[[str], None] | None = None,
                  choose: Callable[[Alternative], None] | None = None) -> list[ft.Control]:
    """The route in words; with ``navigate``, a button to see it on the map; with ``choose``,
    the other shelters (by walking time) as buttons that draw their route."""
    t = app.t
    rows: list[ft.Control] = []
    if route.status is not RouteStatus.OK:
        rows.append(notice(t(route.message_key), ft.Icons.WARNING_AMBER, key="route-status"))
    if route.shelter is None:
        return rows
    rows += [
        ft.Text(route.shelter.name, key="route-result", theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
        ft.Text(distance_text(app, route, place), key="route-distance"),
    ]
    if route.straight_line:
        rows.append(ft.Text(t("mh.straight_line", bearing=round(route.bearing_deg or 0) % 360)))
    elif route.status is RouteStatus.OK:
        rows.append(ft.Text(t("mh.on_roads"), theme_style=ft.TextThemeStyle.BODY_SMALL))
    streets = guiding_streets(route)
    if streets:
        rows.append(ft.Text(t("mh.via_streets", streets=" → ".join(s.name for s in streets)), key="route-streets"))
    if route.path and navigate:
        rows.append(ft.Button(t("mh.show_route"), icon=ft.Icons.MAP, on_click=lambda e: navigate("/hazard/map")))
    if route.alternatives:
        rows.append(ft.Text(t("mh.alternatives")))
        for a in sorted(route.alternatives, key=lambda a: a.walking_time_s):
            label = f"{a.shelter.name} — {distance_text(app, a, place)}"
            rows.append(ft.TextButton(label, icon=ft.Icons.ALT_ROUTE, key=f"alt-{a.shelter.id}",
                                      on_click=(lambda e, a=a: choose(a)) if choose else None, disabled=choose is None))
    return rows


# ---- household, plan, supplies ----
def build_household(app: Mamori, household: Household, save: Callable[[Household], None]) -> list[ft.Control]:
    t = app.t
    controls: list[ft.Control] = [heading(t("mh.household")), ft.Text(t("mh.household_intro"))]
    # The resident is in the household from the start (an empty one is "you alone"), so adding a
    # grandmother makes two people, not one.
    members = household.members or [HouseholdMember(AgeBand.ADULT, label=t("mh.you"))]
    household = replace_members(household, members)
    for index, member in enumerate(members):
        needs = [t(f"mh.age.{member.age_band.value}")]
        if member.mobility is not Mobility.NONE:
            needs.append(t(f"mh.mobility.{member.mobility.value}"))
        if member.medications:
            needs.append(t("mh.has_medication"))
        if member.allergies:
            needs.append(t("mh.has_allergy"))
        controls.append(
            ft.Row(
                [
                    ft.Text(f"{index + 1}. {member.label or t('mh.member')}: {'・'.join(needs)}", expand=True),
                    *([icon_action(ft.Icons.DELETE_OUTLINE, t("mh.remove_member", n=index + 1),
                                   lambda e, i=index: save(_without(household, i)))] if len(members) > 1 else []),
                ]
            )
        )
    if household.needs_early_evacuation:
        controls.append(notice(t("mh.early"), ft.Icons.ELDERLY))
    label = text_field(label=t("mh.member_label"), **helped(t("mh.member_label_help")))
    age = ft.RadioGroup(value=AgeBand.ADULT.value, content=ft.Column([radio(a.value, t(f"mh.age.{a.value}")) for a in AgeBand]))
    mobility = ft.RadioGroup(value=Mobility.NONE.value, content=ft.Column([radio(m.value, t(f"mh.mobility.{m.value}")) for m in Mobility]))
    medication, allergy = ft.Checkbox(), ft.Checkbox()

    def add(e) -> None:
        member = HouseholdMember(
            AgeBand(age.value),
            mobility=Mobility(mobility.value),
            medications=["regular"] if medication.value else [],
            allergies=["food"] if allergy.value else [],
            label=(label.value or "").strip()[:20],
        )
        save(replace_members(household, [*household.members, member]))

    pets = sum(p.count for p in household.pets)
    controls += [
        ft.Text(t("mh.pets"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
        ft.RadioGroup(
            value=str(min(pets, 3)),
            on_change=lambda e: save(_with_pets(household, int(e.control.value))),
            content=ft.Row([ft.Radio(value=str(n), label=t("mh.pets_n", n=n)) for n in range(4)], wrap=True),
        ),
        ft.Text(t("plan.contacts"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
    ]
    for index, contact in enumerate(household.contacts):
        controls.append(
            ft.Row(
                [
                    ft.Text(f"{contact.name} {contact.phone}", expand=True),
                    icon_action(ft.Icons.DELETE_OUTLINE, t("mh.remove_contact", name=contact.name), lambda e,
                                i=index: save(_without_contact(household, i))),
                ]
            )
        )
    contact_name = text_field(label=t("mh.contact_name"))
    contact_phone = text_field(label=t("mh.contact_phone"), keyboard_type=ft.KeyboardType.PHONE)

    def add_contact(e) -> None:
        name, phone = (contact_name.value or "").strip()[:40], (contact_phone.value or "").strip()[:20]
        if name and phone:
            household.contacts = [*household.contacts, Contact(name, phone)]
            save(household)

    controls += [
        contact_name,
        contact_phone,
        ft.Button(t("mh.add_contact"), icon=ft.Icons.CONTACT_PHONE, on_click=add_contact),
        ft.Text(t("mh.add_member"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
        label,
        ft.Text(t("mh.age")),
        age,
        ft.Text(t("mh.mobility")),
        mobility,
        labelled(medication, t("mh.has_medication")),
        labelled(allergy, t("mh.has_allergy")),
        ft.Button(t("mh.add"), icon=ft.Icons.PERSON_ADD, on_click=add),
        ft.Text(t("mh.walking_speed", speed=f"{app.evacuation.walking_speed():.1f}")),
        ft.Text(t("mh.sealed"), theme_style=ft.TextThemeStyle.BODY_SMALL),
    ]
    return controls


def replace_members(household: Household, members: list[HouseholdMember]) -> Household:
    household.members = members
    return household


def _without(household: Household, index: int) -> Household:
    return replace_members(household, [m for i, m in enumerate(household.members) if i != index])


def _without_contact(household: Household, index: int) -> Household:
    household.contacts = [c for i, c in enumerate(household.contacts) if i != index]
    return household


def _with_pets(household: Household, count: int) -> Household:
    household.pets = [Pet("dog_or_cat", count)] if count else []
    return household


def build_plan(app: Mamori, text: str | None, on_hazard: Callable[[HazardType], None], copy: Callable[[str], None]) -> list[ft.Control]:
    t = app.t
    controls: list[ft.Control] = [heading(t("mh.plan")), hazard_chips(app, on_hazard)]
    if text is None:
        return [*controls, notice(t("mh.no_home"), ft.Icons.HOME)]
    return [*controls,
            ft.Container(ft.Text(text, selectable=True, key="plan-text"), padding=12, border=ft.Border.all(1, ft.Colors.OUTLINE),
                         border_radius=8), ft.Button(t("mh.copy_plan"), icon=ft.Icons.COPY, on_click=lambda e: copy(text))]


def build_supplies(app: Mamori, tick: Callable[[str, bool], None]) -> list[ft.Control]:
    t = app.t
    items = app.evacuation.supplies()
    controls: list[ft.Control] = [heading(t("mh.supplies")), ft.Text(t("mh.supplies_intro", people=app.evacuation.household().people))]
    for carry in (True, False):
        controls.append(ft.Text(t("mh.go_bag" if carry else "mh.stockpile"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM))
        for item in (i for i in items if i.carry is carry):
            quantity = int(item.quantity) if float(item.quantity).is_integer() else round(item.quantity, 1)
            label = f"{t(f'supply.{item.key}')} {quantity} {t(f'unit.{item.unit}')}"
            # The name beside the box wraps (a checkbox's own label is one line, clipped in large text).
            controls.append(ft.Row([
                ft.Checkbox(semantics_label=label, value=item.checked, on_change=lambda e, k=item.key: tick(k, bool(e.control.value))),
                ft.Text(label, expand=True),
            ], spacing=4))
    return controls
