"""Shelter list (search, hazard filter, distance sort) and shelter detail."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import flet as ft

from app.connection import ShelterStatus
from app.shelters import ShelterHit, distance_m
from app.state import Mamori
from geo.models import LatLon, Shelter
from protocol.hazards import HazardType, ShelterKind
from views.theme import suitability_colour, suitability_icon
from views.widgets import format_distance, heading, local_time, notice, text_field

# The list shows this many rows at once; the count line always tells the full number.
PAGE_SIZE = 60


@dataclass(frozen=True, slots=True)
class ShelterFilter:
    text: str = ""
    hazard: HazardType | None = None
    kind: ShelterKind | None = None
    by_distance: bool = True

    def with_(self, **changes: object) -> ShelterFilter:
        return replace(self, **changes)


def query(app: Mamori, f: ShelterFilter) -> list[ShelterHit]:
    origin = app.distance_origin() if f.by_distance else None
    return app.shelters.search(f.text, f.hazard, f.kind, origin)


def build_list(
    app: Mamori,
    f: ShelterFilter,
    on_filter: Callable[[ShelterFilter], None],
    navigate: Callable[[str], None],
) -> list[ft.Control]:
    t = app.t
    hits = query(app, f)
    search = text_field(
        label=t("shelters.search"),
        value=f.text,
        prefix_icon=ft.Icons.SEARCH,
        on_submit=lambda e: on_filter(f.with_(text=e.control.value)),
        on_blur=lambda e: on_filter(f.with_(text=e.control.value)) if e.control.value != f.text else None,
    )
    hazard_chips = ft.Row(
        [
            ft.Chip(
                label=ft.Text(t("shelters.all_hazards")),
                selected=f.hazard is None,
                on_select=lambda e: on_filter(f.with_(hazard=None)),
            )
        ]
        + [
            ft.Chip(
                label=ft.Text(t(f"hazard.{h.value}")),
                selected=f.hazard is h,
                on_select=lambda e, h=h: on_filter(f.with_(hazard=None if f.hazard is h else h)),
            )
            for h in HazardType
        ],
        wrap=True,
    )
    kind_chips = ft.Row(
        [
            ft.Chip(
                label=ft.Text(t("shelters.all_kinds") if k is None else t(f"kind.{k.value}")),
                selected=f.kind is k,
                on_select=lambda e, k=k: on_filter(f.with_(kind=k)),
            )
            for k in (None, *ShelterKind)
        ],
        wrap=True,
    )
    origin = app.distance_origin()
    sort_row: list[ft.Control] = [
        ft.Switch(
            label=t("shelters.sort_by_distance_from", place=t("shelters.picked_point" if app.picked_point else "shelters.home")),
            value=f.by_distance and origin is not None,
            disabled=origin is None,
            on_change=lambda e: on_filter(f.with_(by_distance=e.control.value)),
        )
    ]
    if origin is None:
        sort_row.append(ft.Text(t("shelters.sort_needs_home")))
    if f.hazard is not None and f.kind is not ShelterKind.EMERGENCY_SITE:
        sort_row.append(ft.Text(t("shelters.hazard_filter_note")))
    statuses = app.link.shelter_statuses() if app.link else {}
    rows = [_row(app, hit, navigate, statuses.get(hit.shelter.id)) for hit in hits[:PAGE_SIZE]]
    count = ft.Text(t("shelters.count", n=len(hits)), key="shelter-count", weight=ft.FontWeight.BOLD)
    more = [ft.Text(t("shelters.more", shown=PAGE_SIZE, n=len(hits)))] if len(hits) > PAGE_SIZE else []
    empty = [notice(t("shelters.none"), ft.Icons.SEARCH_OFF)] if not hits else []
    return [
        ft.Row(
            [heading(t("shelters.title")), ft.Button(t("shelters.open_map"), icon=ft.Icons.MAP, on_click=lambda e: navigate("/shelters/map"))],
            alignment=ft.MainAxisAlignment.SPACE_BETWEEN,
            wrap=True,
        ),
        ft.Button(t("shelters.checkin"), icon=ft.Icons.QR_CODE_2, on_click=lambda e: navigate("/checkin")),
        search,
        ft.Text(t("shelters.filter_hazard")),
        hazard_chips,
        kind_chips,
        *sort_row,
        count,
        *empty,
        *rows,
        *more,
    ]


def _hazard_badges(app: Mamori, shelter: Shelter) -> ft.Control:
    if shelter.kind is ShelterKind.DESIGNATED_SHELTER:
        return ft.Text(app.t("kind.designated_shelter"), theme_style=ft.TextThemeStyle.BODY_SMALL)
    names = [app.t(f"hazard.{h.value}") for h in HazardType if h in shelter.hazards]
    return ft.Text(app.t("shelters.safe_for", hazards="・".join(names) or app.t("shelters.safe_for_none")), theme_style=ft.TextThemeStyle.BODY_SMALL)


def live_status(app: Mamori, live: ShelterStatus) -> str:
    """'開設中・45人 (2026-11-22 14:02 時点)' — the platform's word, with its age."""
    t = app.t
    text = t(f"live.{live.status}") if t.has(f"live.{live.status}") else live.status
    if live.occupancy is not None and live.status != "closed":
        text += t("live.occupancy", n=live.occupancy)
    if live.self_reported and live.status != "closed":
        text += t("live.self_reported", n=live.self_reported)
    return text + (t("live.as_of", when=local_time(live.observed_at)) if live.observed_at else "")


def _row(app: Mamori, hit: ShelterHit, navigate: Callable[[str], None], live: ShelterStatus | None) -> ft.Control:
    s = hit.shelter
    suitable = s.suits(app.prefs.hazard) if s.kind is ShelterKind.EMERGENCY_SITE else None
    distance = format_distance(app, hit.distance_m)
    return ft.ListTile(
        leading=ft.Icon(suitability_icon(suitable), color=suitability_colour(suitable, app.prefs)),
        title=ft.Text(s.name),
        subtitle=ft.Column(
            [ft.Text(f"{s.address}{'  ' + distance if distance else ''}"), _hazard_badges(app, s)]
            + ([ft.Text(live_status(app, live), weight=ft.FontWeight.BOLD)] if live else []),
            spacing=2,
        ),
        on_click=lambda e: navigate(f"/shelters/{s.kind.value}/{s.id}"),
    )


def build_detail(app: Mamori, shelter: Shelter, navigate: Callable[[str], None]) -> list[ft.Control]:
    t = app.t
    origin = app.distance_origin()
    rows: list[ft.Control] = [
        heading(shelter.name),
        ft.Text(t(f"kind.{shelter.kind.value}")),
        ft.Text(t("detail.address", address=shelter.address or t("detail.unknown")), selectable=True),
    ]
    if origin:
        place = t("mh.place.picked" if app.picked_point else "mh.place.home")
        rows.append(ft.Text(t("detail.distance", d=format_distance(app, distance_m(origin, LatLon(shelter.lat, shelter.lon))), place=place)))
    rows.append(ft.Text(t("detail.suitability"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD))
    if shelter.kind is ShelterKind.DESIGNATED_SHELTER:
        rows.append(notice(t("detail.not_assessed"), ft.Icons.HELP_OUTLINE))
    else:
        for h in HazardType:
            ok = h in shelter.hazards
            rows.append(
                ft.Row(
                    [
                        ft.Icon(suitability_icon(ok), color=suitability_colour(ok, app.prefs)),
                        ft.Text(f"{t(f'hazard.{h.value}')}: {t('detail.ok' if ok else 'detail.not_ok')}"),
                    ]
                )
            )
    live = app.link.shelter_statuses().get(shelter.id) if app.link else None
    if live:
        rows.append(notice(live_status(app, live), ft.Icons.SENSORS, key="live-status"))
    capacity = t("detail.capacity", n=shelter.capacity) if shelter.capacity else t("detail.capacity_unknown")
    rows += [
        ft.Text(capacity),
        ft.Text(t("detail.accepts", who=shelter.accepts) if shelter.accepts else t("detail.accepts_all")),
    ]
    if shelter.note:
        rows.append(ft.Text(t("detail.note", note=shelter.note)))
    twin = app.shelters.same_place(shelter)
    if twin:
        rows.append(
            ft.Button(
                t(f"detail.open_as.{twin.kind.value}"),
                icon=ft.Icons.SWAP_HORIZ,
                on_click=lambda e: navigate(f"/shelters/{twin.kind.value}/{twin.id}"),
            )
        )
    elif shelter.same_address_as_other_kind:
        rows.append(ft.Text(t("detail.same_address")))
    rows += [
        ft.Text(t("detail.source_gsi", id=shelter.id), theme_style=ft.TextThemeStyle.BODY_SMALL),
        ft.Button(
            t("detail.show_on_map"),
            icon=ft.Icons.MAP,
            on_click=lambda e: navigate(f"/shelters/map?focus={shelter.kind.value}/{shelter.id}"),
        ),
    ]
    return rows
