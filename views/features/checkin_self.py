"""Self check-in (/checkin/self): the resident scans the QR posted at the shelter entrance to
check in, and the same poster again to check out. Recorded on the phone at once, with no
network; sent to the city platform in the background when logged in with the evacuee-card
consent (the screen says which of these holds)."""
from __future__ import annotations

import flet as ft

from app.checkin import CheckinEvent, EvacueeCard, ResidentCheckins
from app.state import Mamori
from views.features.checkin_form import in_background, problem, success
from views.features.checkin_service import CheckinService, service
from views.features.qr_reader import scan_buttons
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
                     *scan_buttons(app, shell.render, state, lambda picture: _check_in(me, picture, card, state), RESULT,
                                   t("checkin.self.upload_in"))]
    else:
        controls += [ft.Text(t("checkin.self.leave")),
                     *scan_buttons(app, shell.render, state, lambda picture: _check_out(me, picture, state), RESULT,
                                   t("checkin.self.upload_out"))]
    return controls + _sending(app, shell, state, svc, len(me.pending()))


def _sending(app: Mamori, shell, state: dict, svc: CheckinService, waiting: int) -> list[ft.Control]:
    """Where the records are: on this phone only (and why), queued, or sent; sends what waits."""
    t = app.t
    if not svc.sends_own():
        why = "no_platform" if not (app.link and app.link.configured) else "logged_out" if not svc.platform else "no_consent"
        kept = [ft.Text(t("checkin.self.kept", n=waiting))] if waiting else []
        return [notice(t(f"checkin.self.local_{why}"), ft.Icons.PHONE_ANDROID, key="checkin-unsent"), *kept]
    if waiting and not state.get("own_sync_error"):
        in_background(shell, state, "own", svc.sync_own)
    controls: list[ft.Control] = []
    if state.get("own_sync_rejected"):
        controls.append(problem(t("checkin.self.rejected", n=state["own_sync_rejected"]), key="checkin-sync-rejected"))
    if waiting and state.get("own_sync_error"):
        def retry(_: ft.Event) -> None:
            state["own_sync_error"] = False
            shell.render()
        controls += [notice(t("checkin.self.unsent_offline", n=waiting), ft.Icons.CLOUD_OFF, key="checkin-unsent"),
                     ft.OutlinedButton(t("checkin.self.send_again"), icon=ft.Icons.SYNC, on_click=retry)]
    elif waiting:
        controls.append(notice(t("checkin.self.unsent", n=waiting), ft.Icons.CLOUD_UPLOAD_OUTLINED, key="checkin-unsent"))
    return controls


def _check_in(me: ResidentCheckins, picture: bytes, card: EvacueeCard, state: dict) -> tuple[str, CheckinEvent]:
    event = me.check_in_image(picture, card)
    state["own_sync_error"] = False  # a new record: try sending again
    return "in", event


def _check_out(me: ResidentCheckins, picture: bytes, state: dict) -> tuple[str, CheckinEvent]:
    event = me.check_out_image(picture)
    state["own_sync_error"] = False
    return "out", event


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
