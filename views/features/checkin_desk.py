"""The shelter reception desk (受付), staff mode: scan an evacuee's QR (camera, image upload or
pasted QR text), register people with no phone, check out, search, count against capacity,
and export the aggregate CSV for the disaster HQ."""
from __future__ import annotations

import logging
from collections.abc import Callable

import flet as ft

from app.checkin import (
    DESK,
    SURVEY,
    CardForm,
    CheckinError,
    CheckinService,
    DeskCheckIn,
    EvacueeEntry,
    FormError,
    QuestionKind,
    ShelterDesk,
    ShelterSummary,
    UnknownSigner,
    card_from_form,
)
from app.platform import PlatformError
from app.state import Mamori
from geo.models import Shelter
from protocol.hazards import ShelterKind
from views.contract import Screens
from views.features import checkin_form, checkin_poster
from views.features.checkin import screen_state, view
from views.features.checkin_form import (
    error_text,
    find_shelter,
    keys_notice,
    needs_lines,
    problem,
    staff_switch,
    success,
)
from views.features.checkin_state import CheckinScreen
from views.features.qr_reader import scan_buttons
from views.widgets import heading, helped, local_time, notice, text_field

log = logging.getLogger(__name__)  # error kinds only


DeskScreen = Callable[[Mamori, Screens, CheckinScreen, Shelter, ShelterDesk], list[ft.Control]]


def _desk(shell: Screens, title_key: str, build: DeskScreen) -> ft.View:
    """A desk screen: only in staff mode, for the shelter the desk serves."""
    app, state = shell.app, screen_state(shell)
    if not (state.staff and app.checkin.staff_allowed()):
        controls = [staff_switch(app, shell, state), notice(app.t("checkin.desk.staff_only"), ft.Icons.BADGE)]
    elif (shelter := desk_shelter(app, state)) is None:
        controls = [ft.Text(app.t("checkin.shelter.none_in_region"))]
    else:
        controls = build(app, shell, state, shelter, app.checkin.desk(shelter))
    return view(shell, title_key, controls)


def desk_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return _desk(shell, "checkin.desk.title", desk_screen)


def paper_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return _desk(shell, "checkin.desk.title", paper_form)


def poster_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return _desk(shell, "checkin.desk.title", lambda app, sh, state, shelter, desk: checkin_poster.screen(app, sh, state, shelter))


def desk_shelter(app: Mamori, state: CheckinScreen) -> Shelter | None:
    """The shelter this desk serves: the one staff picked, else the region's first with a known capacity."""
    current = find_shelter(app, state.desk_shelter)
    if current is None:
        hits = app.shelters.search(kind=ShelterKind.DESIGNATED_SHELTER)
        with_capacity = [h.shelter for h in hits if h.shelter.capacity]
        current = (with_capacity or [h.shelter for h in hits] or [None])[0]
        state.desk_shelter = current.id if current else None
    if current is not None:
        app.checkin.use_desk(current)
    return current


def _scan(app: Mamori, shell, state: CheckinScreen, desk: ShelterDesk, action: Callable[[ShelterDesk], DeskCheckIn]) -> None:
    state.desk_scan.result = _checked_in(app, desk, action)
    shell.render()


def _checked_in(app: Mamori, desk: ShelterDesk, action: Callable[[ShelterDesk], DeskCheckIn]) -> tuple[str, object]:
    try:
        return "ok", app.checkin.desk_check_in(desk, action)
    except UnknownSigner:  # still unknown after one key refresh: say so to staff, with the paper path
        return "error", app.t("checkin.desk.unknown_device")
    except CheckinError as exc:
        return "error", error_text(app, exc)


def start_sync(shell, state: CheckinScreen, svc: CheckinService, shelter: Shelter | None) -> None:
    """Platform mode: the sync engine sends this desk's events and takes the others' now; the
    survey summary (staff reading, not a record) is fetched here."""
    if not (svc.platform and shelter is not None):
        return
    svc.desk_sync()

    def summary() -> None:
        try:
            state.survey = svc.survey_summary(shelter)
        except (PlatformError, OSError) as exc:  # offline: the last summary stays
            log.info("survey summary unavailable: %s", type(exc).__name__)
        shell.render()
    shell.run_in_background(summary)


def survey_block(app: Mamori, state: CheckinScreen, shelter_id: str) -> list[ft.Control]:
    """What residents answered in the shelter-life survey, as the platform last summed it up."""
    t, summary = app.t, state.survey
    if not summary or summary.get("shelterId") != shelter_id or not summary["responses"]:
        return []
    lines = [t("checkin.desk.survey_count", n=summary["responses"])]
    for q in SURVEY:
        if q.kind is QuestionKind.SCALE and summary[q.id]["mean"] is not None:
            lines.append(f"{t(q.text_key)} {summary[q.id]['mean']} / {q.high}")
        elif q.kind in (QuestionKind.SINGLE, QuestionKind.MULTI):
            top = sorted(((n, o) for o, n in summary[q.id].items() if n), reverse=True)[:5]
            lines.append(f"{t(q.text_key)} " + "、".join(f"{t(q.option_key(o))} {n}" for n, o in top))
    lines += [f"・{c}" for c in summary["comments"][-5:]]
    return [heading(t("checkin.desk.survey")), *[ft.Text(line) for line in lines]]


def sync_block(app: Mamori, shell, state: CheckinScreen, svc: CheckinService, desk: ShelterDesk) -> list[ft.Control]:
    """Platform mode: what is still unsent, when the desk last synced, and a button to sync now."""
    t = app.t
    if not svc.platform:
        return []
    last = svc.last_synced()
    line = t("checkin.desk.unsent", n=svc.desk_pending()) + " / " + (
        t("checkin.desk.synced_at", time=local_time(last)) if last else t("checkin.desk.never_synced"))
    sync = svc.sync_state(DESK)
    syncing = bool(sync and sync.running)
    controls: list[ft.Control] = [ft.Row([
        ft.Icon(ft.Icons.CLOUD_SYNC_OUTLINED),
        ft.Text(t("checkin.desk.syncing") if syncing else line, key="checkin-sync", expand=True),
        ft.OutlinedButton(t("checkin.desk.sync_now"), icon=ft.Icons.SYNC, disabled=syncing,
                          on_click=lambda e: start_sync(shell, state, svc, desk_shelter(app, state))),
    ], wrap=True)]
    if not svc.seal_keys():
        controls.append(notice(t("checkin.desk.no_desk_keys"), ft.Icons.KEY_OFF, key="checkin-no-keys"))
    if sync is not None and sync.offline:
        controls.append(notice(t("checkin.desk.sync_failed"), ft.Icons.CLOUD_OFF, key="checkin-sync-failed"))
    if svc.rejected(DESK):
        controls.append(problem(t("checkin.desk.sync_rejected", n=svc.rejected(DESK)), key="checkin-sync-rejected"))
    return controls


def desk_screen(app: Mamori, shell: Screens, state: CheckinScreen, shelter: Shelter, desk: ShelterDesk) -> list[ft.Control]:
    """Scanning and its result first (what staff look at all day), then counts, lists and settings."""
    t = app.t
    summary = desk.summary()
    svc = app.checkin
    if state.auto_synced != desk.shelter_id:  # once per shelter opened, then after each check-in
        state.auto_synced = desk.shelter_id
        start_sync(shell, state, svc, desk_shelter(app, state))

    def pick(shelter: Shelter) -> None:
        state.desk_shelter, state.desk_scan.result, state.export = shelter.id, None, None
        svc.use_desk(shelter)
        shell.render()

    return [
        staff_switch(app, shell, state, with_note=False),
        occupancy_line(app, summary, desk.shelter_name),
        *sync_block(app, shell, state, svc, desk),
        *scan_block(app, shell, state, desk),
        ft.OutlinedButton(t("checkin.desk.paper"), icon=ft.Icons.EDIT_NOTE, on_click=lambda e: shell.navigate("/checkin/desk/paper")),
        ft.OutlinedButton(t("checkin.poster.open"), icon=ft.Icons.QR_CODE_2,
                          on_click=lambda e: shell.navigate("/checkin/desk/poster")),
        *summary_block(app, summary),
        *survey_block(app, state, desk.shelter_id),
        *list_block(app, shell, state, desk),
        *export_block(app, shell, state, desk),
        heading(t("checkin.desk.settings")),
        *checkin_form.shelter_picker(app, state.desk_query, lambda q: setattr(state, "desk_query", q), desk.shelter_id,
                                     pick, shell.render),
        *status_block(app, shell, state, svc),
        keys_notice(app, svc),
    ]


def status_block(app: Mamori, shell, state: CheckinScreen, svc: CheckinService) -> list[ft.Control]:
    """Platform mode: tell residents (the shelter list) that this shelter is open or closed."""
    t = app.t
    shelter = desk_shelter(app, state)
    if not svc.platform or shelter is None:
        return []

    def publish(status: str):
        def clicked(_: ft.Event) -> None:
            def run() -> None:
                try:
                    state.published = ("ok", t(f"checkin.desk.status_{svc.publish_status(shelter, status)}"))
                except (PlatformError, OSError):
                    state.published = ("error", t("checkin.desk.status_failed"))
                shell.render()
            shell.run_in_background(run)
        return clicked

    controls: list[ft.Control] = [ft.Row([
        ft.OutlinedButton(t("checkin.desk.publish_open"), icon=ft.Icons.MEETING_ROOM, on_click=publish("open")),
        ft.OutlinedButton(t("checkin.desk.publish_closed"), icon=ft.Icons.DOOR_FRONT_DOOR, on_click=publish("closed")),
    ], wrap=True)]
    kind, text = state.published or (None, "")
    if kind == "ok":
        controls.append(success(t("checkin.desk.published", status=text), key="checkin-published"))
    elif kind == "error":
        controls.append(problem(text, key="checkin-published"))
    return controls


def occupancy_line(app: Mamori, s: ShelterSummary, shelter_name: str) -> ft.Control:
    t = app.t
    if s.capacity:
        occupancy = t("checkin.desk.occupancy", persons=s.persons, capacity=s.capacity, pct=s.occupancy_pct)
    else:
        occupancy = t("checkin.desk.occupancy_no_capacity", persons=s.persons)
    return ft.Column([
        ft.Text(shelter_name, theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
        ft.Text(occupancy, theme_style=ft.TextThemeStyle.HEADLINE_SMALL, weight=ft.FontWeight.BOLD, key="checkin-occupancy"),
        ft.ProgressBar(value=min(1.0, s.persons / s.capacity)) if s.capacity else ft.Container(),
    ], spacing=4)


def summary_block(app: Mamori, s: ShelterSummary) -> list[ft.Control]:
    t = app.t
    needs = t("checkin.desk.needs", care=s.care, disability=s.disability, allergy=s.allergy, medication=s.medication,
              infants=s.infants, pregnant=s.pregnant, pet_households=s.pet_households, pets=s.pets,
              in_car=s.in_car_persons, outside=s.outside_persons)
    controls: list[ft.Control] = [
        heading(t("checkin.desk.summary")),
        ft.Text(t("checkin.desk.households", n=s.households)),
        ft.Text(needs),
    ]
    if s.languages:
        langs = "、".join(f"{t(f'checkin.lang.{k}') if t.has(f'checkin.lang.{k}') else k} {n}" for k, n in sorted(s.languages.items()))
        controls.append(ft.Text(t("checkin.desk.languages", langs=langs)))
    if s.flagged_households:
        controls.append(problem(t("checkin.desk.flagged", n=s.flagged_households), key="checkin-flagged"))
    return controls


def scan_block(app: Mamori, shell, state: CheckinScreen, desk: ShelterDesk) -> list[ft.Control]:
    t = app.t
    pasted = {"text": ""}

    def typed(e: ft.Event) -> None:
        pasted["text"] = e.control.value

    def check(_: ft.Event) -> None:
        text = pasted["text"].strip()
        _scan(app, shell, state, desk, lambda d: d.check_in_text(text))

    def read(picture: bytes) -> DeskCheckIn:
        return app.checkin.desk_check_in(desk, lambda d: d.check_in_image(picture))

    controls = scan_buttons(app, shell.render, state.desk_scan, read, t("checkin.desk.upload"))
    result = state.desk_scan.result
    if result is not None:
        controls += result_block(app, shell, state, desk, result)
    controls += [
        ft.Text(t("checkin.desk.scan_help")),
        ft.Row([text_field(label=t("checkin.desk.paste"), on_change=typed, on_submit=check, expand=True),
                ft.OutlinedButton(t("checkin.desk.check"), on_click=check)]),
    ]
    return controls


def result_block(app: Mamori, shell, state: CheckinScreen, desk: ShelterDesk, result: tuple) -> list[ft.Control]:
    t = app.t
    kind, value = result
    if kind == "error":
        return [problem(value)]
    done: DeskCheckIn = value
    head = t("checkin.desk.already_present" if done.already_present else "checkin.desk.confirmed",
             name=done.card.members[0].name, n=done.card.household_size)
    controls: list[ft.Control] = [success(head)]
    if done.moved_from:
        controls.append(problem(t("checkin.desk.moved", shelter=_name(app, done.moved_from)), key="checkin-moved"))
    controls += [ft.Text(line) for line in needs_lines(app, done.card)]
    if done.card.address or done.card.phone:
        controls.append(ft.Text(" / ".join(x for x in (done.card.address, done.card.phone) if x)))
    return [ft.Container(ft.Column(controls, spacing=6), padding=8)]


def _name(app: Mamori, shelter_id: str) -> str:
    shelter = find_shelter(app, shelter_id)
    return shelter.name if shelter else shelter_id


def list_block(app: Mamori, shell, state: CheckinScreen, desk: ShelterDesk) -> list[ft.Control]:
    t = app.t
    query = state.desk_search

    def search(e: ft.Event) -> None:
        state.desk_search = e.control.value
        shell.render()

    def check_out(ref: str):
        def clicked(_: ft.Event) -> None:
            if state.desk_confirm_out != ref:  # the first tap asks; the second checks out
                state.desk_confirm_out = ref
                shell.render()
                return
            state.desk_confirm_out = None
            try:
                desk.check_out(ref)
                app.checkin.desk_recorded()
                state.desk_scan.result = None
            except CheckinError as exc:
                state.desk_scan.result = ("error", error_text(app, exc))
            shell.render()
        return clicked

    entries = desk.search(query) if query else desk.list_evacuees()
    controls: list[ft.Control] = [
        heading(t("checkin.desk.list")),
        text_field(label=t("checkin.desk.search"), **helped(t("checkin.desk.search_help")),
                     value=query, prefix_icon=ft.Icons.SEARCH, on_submit=search),
        ft.Text(t("checkin.desk.count", n=len(entries))),
    ]
    controls += [_entry(app, e, desk.shelter_id, check_out(e.ref), state.desk_confirm_out == e.ref) for e in entries]
    return controls


def _entry(app: Mamori, e: EvacueeEntry, here: str, on_check_out: Callable, confirming: bool = False) -> ft.Control:
    t = app.t
    names = "、".join(m.name for m in e.card.members)
    if e.shelter_id == here:
        status = t("checkin.desk.present_since", time=local_time(e.checked_in_at)) if e.checked_in_at else ""
    elif e.shelter_id:
        status = t("checkin.desk.elsewhere", shelter=_name(app, e.shelter_id))
    else:
        status = t("checkin.desk.checked_out")
    source = t(f"checkin.desk.source_{e.source}") if e.source in ("qr", "paper") else ""
    rows: list[ft.Control] = [
        ft.Text(names, weight=ft.FontWeight.BOLD),
        ft.Text(" / ".join(x for x in (t("checkin.card.household", n=e.card.household_size), status, source) if x)),
    ]
    if e.flagged:
        rows.append(ft.Text(t("checkin.desk.flagged_one"), color=ft.Colors.ERROR))
    if e.shelter_id == here:
        key = "checkin.desk.check_out_confirm" if confirming else "checkin.desk.check_out"
        rows.append(ft.OutlinedButton(t(key, name=e.card.members[0].name), icon=ft.Icons.LOGOUT, on_click=on_check_out))
    return ft.Container(ft.Column(rows, spacing=4), padding=10, border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
                        border_radius=8)


def export_block(app: Mamori, shell, state: CheckinScreen, desk: ShelterDesk) -> list[ft.Control]:
    t = app.t

    def export(_: ft.Event) -> None:
        try:
            state.export = ("ok", t("checkin.desk.exported", path=str(app.checkin.export_csv(desk))))
        except OSError as exc:  # a full or read-only disk: say where and why
            state.export = ("error", t("checkin.desk.export_failed", error=str(exc)))
        shell.render()

    controls: list[ft.Control] = [
        heading(t("checkin.desk.export_title")),
        ft.Text(t("checkin.desk.export_help")),
        ft.OutlinedButton(t("checkin.desk.export"), icon=ft.Icons.DOWNLOAD, on_click=export),
    ]
    if state.export:
        kind, text = state.export
        controls.append(ft.Container(ft.Text(text, selectable=True), key="checkin-export")
                        if kind == "ok" else problem(text))
    return controls


def paper_form(app: Mamori, shell: Screens, state: CheckinScreen, shelter: Shelter, desk: ShelterDesk) -> list[ft.Control]:
    """Someone with no phone: staff type the paper card (short form) and check the household in."""
    t = app.t
    form: CardForm = state.paper

    def register(_: ft.Event) -> None:
        try:
            done = desk.register_paper(card_from_form(form))
        except (FormError, CheckinError) as exc:
            state.paper_error = error_text(app, exc)
            shell.render()
            return
        app.checkin.desk_recorded()
        state.paper, state.paper_error, state.desk_scan.result = CardForm(), None, ("ok", done)
        shell.navigate("/checkin/desk")

    controls: list[ft.Control] = [
        ft.Text(t("checkin.desk.paper_intro", shelter=desk.shelter_name)),
        *checkin_form.build(app, form, full=False, rerender=shell.render),
    ]
    if state.paper_error:
        controls.append(problem(state.paper_error))
    controls.append(ft.FilledButton(t("checkin.desk.register"), icon=ft.Icons.HOW_TO_REG, on_click=register, height=56))
    return controls
