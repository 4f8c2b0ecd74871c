"""Self check-in (/checkin/self): the resident scans the QR posted at the shelter entrance to
check in, and the same poster again to check out. Recorded on the phone at once, with no
network; sent to the city platform in the background when logged in with the evacuee-card
consent (the screen says which of these holds)."""
from __future__ import annotations

import flet as ft

from app.checkin import OWN, CheckinEvent, CheckinService
from app.state import Mamori
from views.features.checkin_form import problem, success
from views.features.checkin_state import CheckinScreen
from views.features.qr_reader import scan_buttons
from views.widgets import heading, local_time, notice


def screen(app: Mamori, shell, state: CheckinScreen) -> list[ft.Control]:
    t = app.t
    svc = app.checkin
    card = svc.card()
    if card is None:
        return [ft.Text(t("checkin.self.no_card")),
                ft.FilledButton(t("checkin.card.title"), on_click=lambda e: shell.navigate("/checkin"))]
    here = svc.residents.current()
    controls: list[ft.Control] = [*_result(app, state), *_where(app, here)]
    if here is None:
        controls += [ft.Text(t("checkin.self.intro")),
                     *scan_buttons(app, shell.render, state.self_scan, lambda picture: ("in", svc.check_in_self(picture, card)),
                                   t("checkin.self.upload_in"))]
    else:
        controls += [ft.Text(t("checkin.self.leave")),
                     *scan_buttons(app, shell.render, state.self_scan, lambda picture: ("out", svc.check_out_self(picture)),
                                   t("checkin.self.upload_out"))]
    return controls + _sending(app, svc, svc.own_pending())


def _sending(app: Mamori, svc: CheckinService, waiting: int) -> list[ft.Control]:
    """Where the records are: on this phone only (and why), queued, or sent (the sync engine sends them)."""
    t = app.t
    if not svc.sends_own():
        why = "no_platform" if not (app.link and app.link.configured) else "logged_out" if not svc.platform else "no_consent"
        kept = [ft.Text(t("checkin.self.kept", n=waiting))] if waiting else []
        return [notice(t(f"checkin.self.local_{why}"), ft.Icons.PHONE_ANDROID, key="checkin-unsent"), *kept]
    sync = svc.sync_state(OWN)
    controls: list[ft.Control] = []
    if svc.rejected(OWN):
        controls.append(problem(t("checkin.self.rejected", n=svc.rejected(OWN)), key="checkin-sync-rejected"))
    if waiting and sync is not None and sync.offline:
        controls += [notice(t("checkin.self.unsent_offline", n=waiting), ft.Icons.CLOUD_OFF, key="checkin-unsent"),
                     ft.OutlinedButton(t("checkin.self.send_again"), icon=ft.Icons.SYNC, on_click=lambda e: svc.send_own())]
    elif waiting:
        controls.append(notice(t("checkin.self.unsent", n=waiting), ft.Icons.CLOUD_UPLOAD_OUTLINED, key="checkin-unsent"))
    return controls


def _where(app: Mamori, here: CheckinEvent | None) -> list[ft.Control]:
    t = app.t
    if here is None:
        return [heading(t("checkin.self.not_in"))]
    return [heading(t("checkin.self.in_at", shelter=here.shelter_name or here.shelter_id)),
            ft.Text(t("checkin.self.since", time=local_time(here.at), n=here.household_size))]


def _result(app: Mamori, state: CheckinScreen) -> list[ft.Control]:
    outcome = state.self_scan.take()
    if outcome is None:
        return []
    kind, value = outcome
    if kind == "error":
        return [problem(value)]
    action, event = value
    key = "checkin.self.checked_in" if action == "in" else "checkin.self.checked_out"
    return [success(app.t(key, shelter=event.shelter_name or event.shelter_id))]
