"""Shelter QR check-in (resident card and QR, survey, staff desk). Screens below /checkin:

/checkin          the resident's evacuee card (fill once, edit) and the staff-mode switch
/checkin/qr       the signed, sealed QR to show at the shelter desk
/checkin/self     self check-in/out by the poster at the shelter entrance (checkin_self)
/checkin/survey   the shelter-life survey
/checkin/desk...  the staff desk (checkin_desk)
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

import flet as ft

from app.checkin import (
    SURVEY,
    CardForm,
    CheckinError,
    EvacueeCard,
    FormError,
    QuestionKind,
    form_from_card,
    form_from_household,
)
from app.household import Household
from app.state import Mamori
from views.contract import Screens, screen_view
from views.features import checkin_form, checkin_self
from views.features.checkin_form import (
    error_text,
    needs_lines,
    problem,
    staff_switch,
    success,
)
from views.features.checkin_state import CheckinScreen
from views.widgets import clock, heading, notice, text_field

QR_SIDE_PX = 390  # at most this wide (a 430 px phone less margins), at a whole number of pixels per module


def screen_state(shell: Screens) -> CheckinScreen:
    return shell.screen_state("checkin", CheckinScreen)


def card_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return view(shell, "checkin.title", resident(shell.app, shell, screen_state(shell)))


def qr_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return view(shell, "checkin.qr.title", qr_screen(shell.app, shell, screen_state(shell)))


def self_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return view(shell, "checkin.self.title", checkin_self.screen(shell.app, shell, screen_state(shell)))


def survey_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return view(shell, "checkin.survey.title", survey_screen(shell.app, shell, screen_state(shell)))


def view(shell: Screens, title_key: str, controls: list[ft.Control]) -> ft.View:
    return screen_view(shell, title_key, controls, padding=16)


# ---- resident: the card ----

def resident(app: Mamori, shell, state: CheckinScreen) -> list[ft.Control]:
    try:
        card = app.checkin.card()
    except CheckinError as exc:  # the card cannot be opened with this device's key
        return [staff_switch(app, shell, state), problem(error_text(app, exc))]
    if card is None or state.editing:
        form = state.form
        if form is None:
            household = None if card else app.evacuation.household()
            state.from_household = bool(household and household.members)
            form = state.form = form_from_card(card) if card else form_from_household(household or Household(), app.t)
        return _card_editor(app, shell, state, form, first_time=card is None)
    return _card_summary(app, shell, state, card)


def _card_editor(app: Mamori, shell, state: CheckinScreen, form: CardForm, first_time: bool) -> list[ft.Control]:
    t = app.t

    def save(_: ft.Event) -> None:
        try:
            app.checkin.save(form)
        except (FormError, CheckinError) as exc:
            state.message = ("error", error_text(app, exc))
        else:
            state.editing, state.form, state.qr, state.message = False, None, None, ("ok", t("checkin.card.saved"))
        shell.render()

    def cancel(_: ft.Event) -> None:
        state.editing, state.form, state.message = False, None, None
        shell.render()

    buttons: list[ft.Control] = [ft.FilledButton(t("checkin.card.save"), icon=ft.Icons.SAVE, on_click=save)]
    if not first_time:
        buttons.append(ft.OutlinedButton(t("checkin.card.cancel"), on_click=cancel))
    return [
        staff_switch(app, shell, state),
        heading(t("checkin.card.title")),
        ft.Text(t("checkin.card.intro")),
        *([notice(t("checkin.card.from_household", n=len(form.members)), ft.Icons.FAMILY_RESTROOM)]
          if first_time and state.from_household else []),
        *checkin_form.build(app, form, full=True, rerender=shell.render),
        *_message(state),
        ft.Row(buttons, wrap=True),
    ]


def _message(state: CheckinScreen) -> list[ft.Control]:
    message, state.message = state.message, None
    if message is None:
        return []
    kind, text = message
    return [problem(text) if kind == "error" else success(text)]


def _card_summary(app: Mamori, shell, state: CheckinScreen, card: EvacueeCard) -> list[ft.Control]:
    t = app.t

    def show(_: ft.Event) -> None:
        _new_qr(app, state, card)
        shell.navigate("/checkin/qr")

    def edit(_: ft.Event) -> None:
        state.editing, state.form = True, None
        shell.render()

    return [
        staff_switch(app, shell, state),
        *_message(state),
        heading(t("checkin.card.title")),
        ft.Text(t("checkin.card.household", n=card.household_size)),
        *[ft.Text(line) for line in needs_lines(app, card)],
        ft.FilledButton(t("checkin.qr.show"), icon=ft.Icons.QR_CODE_2, on_click=show, height=56),
        ft.Text(t("checkin.qr.privacy")),
        ft.FilledTonalButton(t("checkin.self.open"), icon=ft.Icons.QR_CODE_SCANNER, height=56,
                             on_click=lambda e: shell.navigate("/checkin/self")),
        ft.Row([
            ft.OutlinedButton(t("checkin.card.edit"), icon=ft.Icons.EDIT, on_click=edit),
            ft.OutlinedButton(t("checkin.survey.open"), icon=ft.Icons.ASSIGNMENT,
                              on_click=lambda e: shell.navigate("/checkin/survey")),
        ], wrap=True),
    ]


# ---- resident: the QR ----

def _new_qr(app: Mamori, state: CheckinScreen, card: EvacueeCard) -> None:
    try:
        state.qr, state.qr_error = app.checkin.qr(card), None
    except CheckinError as exc:  # no shelter key yet, or a card too large for a readable QR
        state.qr, state.qr_error = None, error_text(app, exc)


def qr_screen(app: Mamori, shell, state: CheckinScreen) -> list[ft.Control]:
    t = app.t
    card = app.checkin.card()
    if card is None:
        return [ft.Text(t("checkin.qr.no_card")),
                ft.FilledButton(t("checkin.card.title"), on_click=lambda e: shell.navigate("/checkin"))]
    if state.qr is None and state.qr_error is None:
        _new_qr(app, state, card)

    def refresh(_: ft.Event) -> None:
        _new_qr(app, state, card)
        shell.render()

    again = ft.FilledButton(t("checkin.qr.refresh"), icon=ft.Icons.REFRESH, on_click=refresh)
    if state.qr_error:
        return [problem(state.qr_error), again]
    qr = state.qr
    scale = max(2, QR_SIDE_PX // (qr.modules + 8))
    expired = qr.expires_at <= time.time()
    until = clock(datetime.fromtimestamp(qr.expires_at, UTC))
    image = ft.Image(src=qr.png(scale=scale), width=scale * (qr.modules + 8), height=scale * (qr.modules + 8),
                     filter_quality=ft.FilterQuality.NONE, semantics_label=t("checkin.qr.image"), key="checkin-qr")
    return [
        ft.Text(t("checkin.qr.show_at_desk"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
        ft.Row([image], alignment=ft.MainAxisAlignment.CENTER),
        problem(t("checkin.qr.expired")) if expired else ft.Text(t("checkin.qr.expires", time=until),
                                                                  theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
        again,
        notice(t("checkin.qr.privacy"), ft.Icons.LOCK_OUTLINE),
    ]


# ---- resident: the shelter-life survey ----

def _survey_shelter(app: Mamori, state: CheckinScreen) -> str | None:
    """Where the resident is: their own check-in, else the shelter they picked, else the desk's."""
    here = app.checkin.residents.current()
    if here is not None:
        return here.shelter_id
    return state.survey_shelter or state.desk_shelter


def survey_screen(app: Mamori, shell, state: CheckinScreen) -> list[ft.Control]:
    t = app.t
    answers: dict[str, object] = state.survey_answers
    shelter_id = _survey_shelter(app, state)

    def pick(shelter) -> None:
        state.survey_shelter = shelter.id
        shell.render()

    def submit(_: ft.Event) -> None:
        missing = [q for q in SURVEY if q.required and answers.get(q.id) in (None, "", [])]
        svc = app.checkin
        if missing:
            state.message = ("error", t("checkin.survey.missing", question=t(missing[0].text_key)))
        elif not shelter_id:
            state.message = ("error", t("checkin.survey.no_shelter"))
        else:
            try:
                svc.record_survey(shelter_id, answers, language=t.lang)
            except CheckinError as exc:
                state.message = ("error", error_text(app, exc))
            else:
                state.survey_answers = {}
                state.message = ("ok", t("checkin.survey.thanks" if svc.sends_own() else "checkin.survey.thanks_kept"))
        shell.render()

    controls: list[ft.Control] = [ft.Text(t("checkin.survey.intro"))]
    controls += checkin_form.shelter_picker(app, state.survey_query, lambda q: setattr(state, "survey_query", q), shelter_id,
                                            pick, shell.render)
    for q in SURVEY:
        controls.append(ft.Container(_question(app, q, answers), padding=ft.Padding.only(top=8)))
    controls += [*_message(state), ft.FilledButton(t("checkin.survey.submit"), icon=ft.Icons.SEND, on_click=submit)]
    return controls


def _question(app: Mamori, q, answers: dict[str, object]) -> ft.Control:
    t = app.t

    def set_value(e: ft.Event) -> None:
        answers[q.id] = int(e.control.value) if q.kind is QuestionKind.SCALE else e.control.value

    title = ft.Text(t(q.text_key), weight=ft.FontWeight.BOLD)
    if q.kind is QuestionKind.SCALE:
        def label(n: int) -> str:
            end = {q.low: q.option_key("low"), q.high: q.option_key("high")}.get(n)
            return f"{n} {t(end)}" if end else str(n)
        radios = [ft.Radio(value=str(n), label=label(n)) for n in range(q.low, q.high + 1)]
        value = answers.get(q.id)
        return ft.Column([title, ft.RadioGroup(value=None if value is None else str(value), on_change=set_value,
                                               content=ft.Row(radios, wrap=True))])
    if q.kind is QuestionKind.SINGLE:
        radios = [ft.Radio(value=o, label=t(q.option_key(o))) for o in q.options]
        return ft.Column([title, ft.RadioGroup(value=answers.get(q.id), on_change=set_value,
                                               content=ft.Row(radios, wrap=True))])
    if q.kind is QuestionKind.MULTI:
        chosen: list[str] = answers.setdefault(q.id, [])  # type: ignore[assignment]

        def toggle(option: str):
            def changed(e: ft.Event) -> None:
                if e.control.value and option not in chosen:
                    chosen.append(option)
                elif not e.control.value and option in chosen:
                    chosen.remove(option)
            return changed

        boxes = [ft.Checkbox(label=t(q.option_key(o)), value=o in chosen, on_change=toggle(o)) for o in q.options]
        return ft.Column([title, ft.Row(boxes, wrap=True)])
    return text_field(label=t(q.text_key), value=answers.get(q.id, ""), multiline=True, min_lines=2,
                        on_change=set_value)
