"""The evacuee card form (避難者カード): the resident fills it once; desk staff use a short
version for people with no phone. Fields write straight into a CardForm, so a re-render keeps
what was typed; only choices that change the layout (add/remove a person) re-render."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import flet as ft

from app.checkin import (
    STAFF_ROLE,
    CardForm,
    CareLevel,
    CheckinError,
    CheckinService,
    EvacueeCard,
    FormError,
    InvalidCard,
    MemberForm,
    Sex,
    StayPlace,
)
from app.state import Mamori
from geo.models import Shelter
from protocol.hazards import ShelterKind
from views.widgets import RESIDENT_TZ, checkbox, heading, helped, notice, switch, text_field

if TYPE_CHECKING:
    from views.features.checkin_state import CheckinScreen

log = logging.getLogger(__name__)  # error kinds only: never keys, tokens or card data

LANGUAGES = ("ja", "en", "zh", "ko", "vi", "pt", "tl", "ne")  # the household's language, as a BCP 47 tag


def _text(label: str, obj: object, attr: str, *, keyboard: ft.KeyboardType | None = None, hint: str | None = None,
          multiline: bool = False) -> ft.TextField:
    def changed(e: ft.Event) -> None:
        setattr(obj, attr, e.control.value)

    return text_field(label=label, value=getattr(obj, attr), on_change=changed, keyboard_type=keyboard,
                        hint_text=hint, multiline=multiline, min_lines=2 if multiline else None)


def _radios(label: str, obj: object, attr: str, options: list[tuple[str, str]]) -> ft.Control:
    def changed(e: ft.Event) -> None:
        setattr(obj, attr, e.control.value)

    return ft.Column([
        ft.Text(label, weight=ft.FontWeight.BOLD),
        ft.RadioGroup(value=getattr(obj, attr), on_change=changed,
                      content=ft.Row([ft.Radio(value=v, label=text) for v, text in options], wrap=True)),
    ], spacing=2)


def _member(app: Mamori, form: CardForm, i: int, m: MemberForm, full: bool, rerender: Callable[[], None]) -> ft.Control:
    t = app.t
    n = i + 1

    def remove(_: ft.Event) -> None:
        form.members.pop(i)
        rerender()

    def pregnant(e: ft.Event) -> None:
        m.pregnant = bool(e.control.value)

    title = t("checkin.form.person_label", n=n, label=m.label) if m.label else t("checkin.form.person", n=n)
    head = [ft.Text(title, theme_style=ft.TextThemeStyle.TITLE_MEDIUM,
                    weight=ft.FontWeight.BOLD, expand=True)]
    if len(form.members) > 1:
        head.append(ft.TextButton(t("checkin.form.remove_person", n=n), icon=ft.Icons.PERSON_REMOVE, on_click=remove))
    fields: list[ft.Control] = [
        ft.Row(head),  # the title takes what the button leaves (expand: never inside a wrapping Row)
        _text(t("checkin.form.name"), m, "name"),
        _text(t("checkin.form.kana"), m, "kana"),
        _text(t("checkin.form.birth"), m, "birth", keyboard=ft.KeyboardType.DATETIME, hint=t("checkin.form.birth_hint")),
    ]
    if full:
        fields.append(_radios(t("checkin.form.sex"), m, "sex", [(s.name, t(f"checkin.sex.{s.name.lower()}")) for s in Sex]))
    fields += [
        _radios(t("checkin.form.care"), m, "care", [(c.name, t(f"checkin.care.{c.name.lower()}")) for c in CareLevel]),
        _text(t("checkin.form.disability"), m, "disability"),
        _text(t("checkin.form.allergies"), m, "allergies", hint=t("checkin.form.allergies_hint")),
        _text(t("checkin.form.medication"), m, "medication"),
        checkbox(t("checkin.form.pregnant"), m.pregnant, pregnant),
    ]
    return ft.Container(ft.Column(fields, spacing=8), padding=12, border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
                        border_radius=8)


def build(app: Mamori, form: CardForm, *, full: bool, rerender: Callable[[], None]) -> list[ft.Control]:
    """The form's controls. ``full``: the resident's complete card; otherwise the desk's short paper form."""
    t = app.t

    def add(_: ft.Event) -> None:
        form.members.append(MemberForm())
        rerender()

    controls: list[ft.Control] = [heading(t("checkin.form.household"))]
    controls += [_member(app, form, i, m, full, rerender) for i, m in enumerate(form.members)]
    controls.append(ft.OutlinedButton(t("checkin.form.add_person"), icon=ft.Icons.PERSON_ADD, on_click=add))
    controls += [
        heading(t("checkin.form.home")),
        _text(t("checkin.form.address"), form, "address", keyboard=ft.KeyboardType.STREET_ADDRESS),
        *([_text(t("checkin.form.postal_code"), form, "postal_code", keyboard=ft.KeyboardType.NUMBER)] if full else []),
        _text(t("checkin.form.phone"), form, "phone", keyboard=ft.KeyboardType.PHONE),
    ]
    if full:
        controls += [
            _text(t("checkin.form.contact_name"), form, "contact_name"),
            _text(t("checkin.form.contact_phone"), form, "contact_phone", keyboard=ft.KeyboardType.PHONE),
            _radios(t("checkin.form.language"), form, "language", [(code, t(f"checkin.lang.{code}")) for code in LANGUAGES]),
        ]
    controls += [
        heading(t("checkin.form.needs")),
        ft.Text(t("checkin.form.infant_note")),
        _radios(t("checkin.form.stay"), form, "stay", [(s.name, t(f"checkin.stay.{s.name.lower()}")) for s in StayPlace]),
        _text(t("checkin.form.pets"), form, "pets", keyboard=ft.KeyboardType.NUMBER),
    ]
    if full:
        controls.append(_text(t("checkin.form.pets_note"), form, "pets_note"))
    return controls


def problem(text: str, key: str = "checkin-error") -> ft.Control:
    """A failure said plainly, in red (forged, expired, replayed codes; form mistakes)."""
    return ft.Container(
        key=key,
        content=ft.Row([ft.Icon(ft.Icons.ERROR_OUTLINE, color=ft.Colors.ERROR),
                        ft.Text(text, color=ft.Colors.ERROR, weight=ft.FontWeight.BOLD, expand=True)],
                       vertical_alignment=ft.CrossAxisAlignment.START),
        padding=12, border=ft.Border.all(2, ft.Colors.ERROR), border_radius=8,
    )


def success(text: str, key: str = "checkin-ok") -> ft.Control:
    return ft.Container(
        key=key,
        content=ft.Row([ft.Icon(ft.Icons.CHECK_CIRCLE, color="#1B7F3B"),
                        ft.Text(text, weight=ft.FontWeight.BOLD, expand=True)],
                       vertical_alignment=ft.CrossAxisAlignment.START),
        padding=12, border=ft.Border.all(2, "#1B7F3B"), border_radius=8,
    )


PICKER_ROWS = 6


def find_shelter(app: Mamori, shelter_id: str | None) -> Shelter | None:
    if not shelter_id:
        return None
    return app.shelters.get(ShelterKind.DESIGNATED_SHELTER, shelter_id) or app.shelters.get(ShelterKind.EMERGENCY_SITE, shelter_id)


def shelter_picker(app: Mamori, query: str, set_query: Callable[[str], None], current_id: str | None,
                   on_pick: Callable[[Shelter], None], rerender: Callable[[], None]) -> list[ft.Control]:
    """The shelter in use, and a search over the region's designated shelters to change it."""
    t = app.t
    current = find_shelter(app, current_id)

    def search(e: ft.Event) -> None:
        set_query(e.control.value)
        rerender()

    def pick(shelter: Shelter):
        def picked(_: ft.Event) -> None:
            set_query("")
            on_pick(shelter)
        return picked

    line = (t("checkin.shelter.current", name=current.name,
              capacity=t("checkin.shelter.capacity", n=current.capacity) if current.capacity else t("checkin.shelter.capacity_unknown"))
            if current else t("checkin.shelter.none"))
    controls: list[ft.Control] = [
        ft.Text(line, theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
        text_field(label=t("checkin.shelter.search"), **helped(t("checkin.shelter.search_help")),
                     value=query, prefix_icon=ft.Icons.SEARCH, on_submit=search),
    ]
    if query or current is None:
        hits = app.shelters.search(query, kind=ShelterKind.DESIGNATED_SHELTER)[:PICKER_ROWS]
        controls += [ft.ListTile(title=ft.Text(h.shelter.name), subtitle=ft.Text(h.shelter.address),
                                 leading=ft.Icon(ft.Icons.HOLIDAY_VILLAGE_OUTLINED), on_click=pick(h.shelter))
                     for h in hits]
        if not hits:
            controls.append(ft.Text(t("checkin.shelter.no_match")))
    return controls


def error_text(app: Mamori, exc: Exception) -> str:
    """The typed error's message; a card field the model refused is named too."""
    if isinstance(exc, FormError):
        return app.t(exc.key, **exc.values)
    if isinstance(exc, InvalidCard):
        return f"{app.t(exc.key)} ({exc.detail})"
    if isinstance(exc, CheckinError):
        return app.t(exc.key)
    raise exc


def staff_switch(app: Mamori, shell, state: CheckinScreen, with_note: bool = True) -> ft.Control:
    """Reception mode: a local switch with demo keys; with the platform, only for shelter_staff."""
    svc = app.checkin
    if svc.platform and state.connected is not svc:  # roles and keys once per login, through the sync engine
        state.connected = svc
        svc.connect()
    allowed = svc.staff_allowed()

    def toggle(e: ft.Event) -> None:
        state.staff = bool(e.control.value)
        shell.navigate("/checkin/desk" if state.staff else "/checkin")

    staff = switch(app.t("checkin.staff_mode"), bool(state.staff) and allowed, toggle, disabled=not allowed)
    return ft.Column([staff, keys_notice(app, svc)]) if with_note else staff


def keys_notice(app: Mamori, svc: CheckinService) -> ft.Control:
    """Whose keys are in use, and (with the platform) why staff mode is or is not available."""
    t = app.t
    if not svc.platform:
        login = " " + t("checkin.login_for_platform") if app.link and app.link.configured else ""
        return notice(t("checkin.demo_keys") + login, ft.Icons.KEY, key="checkin-keys")
    identity = svc.identity()
    if identity is None:
        return notice(t("checkin.platform_keys") + " " + t("checkin.roles_checking"), ft.Icons.BADGE, key="checkin-keys")
    role = "" if identity.has_role(STAFF_ROLE) else " " + t("checkin.staff_need_role")
    return notice(t("checkin.platform_keys") + role, ft.Icons.VERIFIED_USER, key="checkin-keys")


def needs_lines(app: Mamori, card: EvacueeCard) -> list[str]:
    """One line per person with what staff should know, then the household's own needs."""
    t = app.t
    lines = []
    for m in card.members:
        bits = [m.name]
        if m.birth_date:
            bits.append(t("checkin.card.age", n=m.age_on(datetime.now(RESIDENT_TZ).date())))
        if m.care_level:
            bits.append(t(f"checkin.care.{m.care_level.name.lower()}"))
        if m.disability:
            bits.append(t("checkin.card.disability", text=m.disability))
        if m.allergies:
            bits.append(t("checkin.card.allergies", text="、".join(m.allergies)))
        if m.medication:
            bits.append(t("checkin.card.medication", text=m.medication))
        if m.is_infant_on(datetime.now(RESIDENT_TZ).date()):
            bits.append(t("checkin.card.infant"))
        if m.pregnant:
            bits.append(t("checkin.form.pregnant"))
        lines.append(" / ".join(bits))
    if card.pets:
        lines.append(t("checkin.card.pets", n=card.pets, note=card.pets_note))
    if card.stay.name != "IN_SHELTER":
        lines.append(t(f"checkin.stay.{card.stay.name.lower()}"))
    lines.append(t("checkin.card.language", lang=t(f"checkin.lang.{card.language}") if t.has(f"checkin.lang.{card.language}") else card.language))
    return lines
