"""Self check-in (/checkin/self): the resident scans the QR posted at the shelter entrance to
check in, and the same poster again to check out. Recorded on the phone at once, with no
network; the outbox sends it when the connection returns."""
from __future__ import annotations

import flet as ft

from app.checkin import CheckinEvent, EvacueeCard, ResidentCheckins
from app.state import Mamori
from views.features.checkin_camera import scan_buttons
from views.features.checkin_form import problem, success
from views.features.checkin_service import service
from views.widgets import heading, local_time, notice

RESULT = "self_result"


def screen(app: Mamori, shell, state: dict) -> list[ft.Control]:
    t = app.t
    svc = service(app, state)
    card = svc.card()
    if card is None:
        return [ft.Text(t("checkin.self.no_card")),
                ft.FilledButton(t("checkin.card.title"), on_click=lambda e: shell.navigate("/checkin"))]
    me = ResidentCheckins(app.db, svc.directory)
    here = me.current()
    controls: list[ft.Control] = [*_result(app, state), *_where(app, here)]
    if here is None:
        controls += [ft.Text(t("checkin.self.intro")),
                     *scan_buttons(app, shell.render, state, lambda picture: _check_in(me, picture, card), RESULT,
                                   t("checkin.self.upload_in"))]
    else:
        controls += [ft.Text(t("checkin.self.leave")),
                     *scan_buttons(app, shell.render, state, lambda picture: _check_out(me, picture), RESULT,
                                   t("checkin.self.upload_out"))]
    waiting = sum(e.origin == "self" for e in me.pending())  # a desk on the same device has its own queue
    if waiting:
        controls.append(notice(t("checkin.self.unsent", n=waiting), ft.Icons.CLOUD_UPLOAD_OUTLINED, key="checkin-unsent"))
    return controls


def _check_in(me: ResidentCheckins, picture: bytes, card: EvacueeCard) -> tuple[str, CheckinEvent]:
    return "in", me.check_in_image(picture, card)


def _check_out(me: ResidentCheckins, picture: bytes) -> tuple[str, CheckinEvent]:
    return "out", me.check_out_image(picture)


def _where(app: Mamori, here: CheckinEvent | None) -> list[ft.Control]:
    t = app.t
    if here is None:
        return [heading(t("checkin.self.not_in"))]
    return [heading(t("checkin.self.in_at", shelter=here.shelter_name or here.shelter_id)),
            ft.Text(t("checkin.self.since", time=local_time(here.at), n=here.household_size))]


def _result(app: Mamori, state: dict) -> list[ft.Control]:
    outcome = state.pop(RESULT, None)
    if outcome is None:
        return []
    kind, value = outcome
    if kind == "error":
        return [problem(value)]
    action, event = value
    key = "checkin.self.checked_in" if action == "in" else "checkin.self.checked_out"
    return [success(app.t(key, shelter=event.shelter_name or event.shelter_id))]
