"""Family safety check (安否確認): one-tap answers, the family list, groups and invites,
"share as text", the disaster-alert banner for Home, PFIF export and the HQ view (/family/hq).

Screens are built from ``FamilyCtl`` (family_ctl.py) and ``app.family``; taps call the
controller, which records locally first and talks to the platform in the background.
"""
from __future__ import annotations

import io
from datetime import UTC, datetime

import flet as ft
import segno

from app.checkin import read_qr_texts
from app.consent import DataCategory
from app.family import (
    INVITE_PREFIX,
    LOCAL_ME,
    NEEDS,
    SHARES,
    Answer,
    Banner,
    MemberStatus,
    Relation,
    SafetyStatus,
    age_key,
    share_text,
)
from app.state import Mamori
from views.contract import Screens, screen_view
from views.features import family_hq
from views.features.family_ctl import FamilyCtl, controller
from views.features.family_hq import STATUS_LOOK
from views.features.qr_reader import scan_buttons
from views.widgets import checkbox, clock, format_distance, heading, helped, notice, switch, text_field

UNKNOWN_LOOK = ("#616161", ft.Icons.HELP_OUTLINE)


def tab(app: Mamori, shell) -> list[ft.Control]:
    ctl = controller(app, shell)
    ctl.opened()
    t = app.t
    controls: list[ft.Control] = [heading(t("family.title"))]
    if ctl.needs_answer_for_hq():
        controls.append(notice(t("family.reminded"), ft.Icons.CAMPAIGN, key="family-reminded"))
    if ctl.message:
        controls.append(notice(ctl.message, ft.Icons.INFO_OUTLINE, key="family-message"))
    controls += answer_panel(app, ctl)
    controls += my_status(app, ctl)
    controls += account_part(app, ctl, shell)
    return controls


def hq_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return screen_view(shell, "family.hq.title", family_hq.build(shell.app, controller(shell.app, shell)))


def proxy_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return screen_view(shell, "family.proxy.title", proxy_screen(shell.app, controller(shell.app, shell), params["person"]))


def banners(app: Mamori, shell) -> list[ft.Control]:
    ctl = controller(app, shell)
    ctl.watch_alerts()
    shown = [alert_banner(app, b, shell.navigate) for b in ctl.banners()]
    if ctl.needs_answer_for_hq():
        shown.append(ft.Container(ft.Column([
            ft.Text(app.t("family.reminded"), weight=ft.FontWeight.BOLD),
            ft.Button(content=app.t("family.alert.answer_button"), icon=ft.Icons.CHECK, on_click=lambda e: shell.navigate("/family")),
        ], tight=True), padding=12, border=ft.Border.all(3, "#B00000"), border_radius=8, key="home-reminded"))
    return shown


# ---- the alert banner (Home shows it first) ------------------------------------------------------
def alert_banner(app: Mamori, banner: Banner, navigate) -> ft.Control:
    t = app.t
    alert = banner.alert
    hazard = t(f"family.hazard.{alert.hazard}") if t.has(f"family.hazard.{alert.hazard}") else alert.hazard
    colour = "#B00000" if alert.level >= 4 else "#8A4B00" if alert.level == 3 else "#1F2937"
    rows: list[ft.Control] = [
        ft.Row([ft.Icon(ft.Icons.WARNING, color="#FFFFFF", size=36),
                ft.Text(banner.title, color="#FFFFFF", weight=ft.FontWeight.BOLD,
                        theme_style=ft.TextThemeStyle.TITLE_LARGE, expand=True)]),
        ft.Text(t("family.alert.hazard_line", hazard=hazard), color="#FFFFFF", weight=ft.FontWeight.BOLD),
        ft.Text(banner.body, color="#FFFFFF", theme_style=ft.TextThemeStyle.BODY_LARGE),
    ]
    if not banner.ask_for_answer:
        rows.append(ft.Text(t("family.alert.answered"), color="#FFFFFF"))
    rows.append(ft.Button(content=t("family.alert.answer_button"), icon=ft.Icons.CHECK, bgcolor="#FFFFFF", color="#000000",
                          height=56, width=float("inf"), on_click=lambda e: navigate("/family")))
    return ft.Container(ft.Column(rows, spacing=8), bgcolor=colour, padding=16, border_radius=8,
                        border=ft.Border.all(3, "#000000"), key=f"alert-banner-{alert.id}")


# ---- answering -----------------------------------------------------------------------------
def answer_buttons(app: Mamori, on_answer) -> list[ft.Control]:
    """Five big labelled buttons, one tap each."""
    buttons = []
    for status in SafetyStatus:
        colour, icon = STATUS_LOOK[status]
        buttons.append(ft.Button(
            content=ft.Text(app.t(status.label_key), size=20, weight=ft.FontWeight.BOLD),
            icon=icon, icon_color="#FFFFFF", bgcolor=colour, color="#FFFFFF", height=64, width=float("inf"),
            key=f"answer-{status.value}", on_click=lambda e, s=status: on_answer(s)))
    return buttons


def answer_panel(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    t = app.t

    def set_note(e: ft.Event) -> None:
        ctl.note = e.control.value or ""

    def set_location(e: ft.Event) -> None:
        ctl.with_location = bool(e.control.value)
        if ctl.with_location and app.position is None:
            ctl.locate()

    location_ok = ctl.consented(DataCategory.LOCATION)
    controls: list[ft.Control] = [
        ft.Text(t("family.answer.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD),
        *answer_buttons(app, ctl.answer),
        text_field(label=t("family.answer.note"), **helped(t("family.answer.note_help")), value=ctl.note, max_length=140,
                     on_change=set_note),
        switch(t("family.answer.with_location"), ctl.with_location and location_ok, set_location, disabled=not location_ok),
    ]
    if not location_ok:
        controls.append(ft.Text(t("family.answer.location_needs_consent"), theme_style=ft.TextThemeStyle.BODY_SMALL))
    return controls


def proxy_screen(app: Mamori, ctl: FamilyCtl, person: str) -> list[ft.Control]:
    """A caregiver answers for a 要支援者 (only when that person named them, with consent)."""
    t = app.t
    book = ctl.book()
    name = next((m.name for g in book.groups() for m in book.members(g["id"]) if m.person == person), "")
    if not book.may_answer_for(person):
        return [notice(t("family.proxy.not_allowed"), ft.Icons.BLOCK)]
    controls: list[ft.Control] = [heading(t("family.proxy.for", name=name)), ft.Text(t("family.proxy.intro"))]
    if ctl.message:
        controls.append(notice(ctl.message, key="family-message"))
    controls += answer_buttons(app, lambda s: ctl.answer(s, person=person))
    refused = [a for a in book.refused_proxy_answers() if a.person == person]
    if refused:
        controls.append(notice(t("family.proxy.refused", n=len(refused)), ft.Icons.WARNING_AMBER))
    return controls


# ---- my latest answer and "share as text" ----------------------------------------------------
def my_status(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    t = app.t
    latest = ctl.book().latest(ctl.me())
    controls: list[ft.Control] = [
        ft.Text(t("family.mine.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD)]
    if latest is None:
        controls.append(ft.Text(t("family.mine.none")))
        return controls
    age = max(0, int((datetime.now(UTC) - latest.observed_at).total_seconds()))
    controls.append(status_tile(app, t("family.me"), latest, age, key="my-status"))

    def toggle(e) -> None:
        ctl.share_open = not ctl.share_open
        ctl.shell.render()

    controls.append(ft.Button(content=t("family.share.button"), icon=ft.Icons.SMS_OUTLINED, on_click=toggle))
    if ctl.share_open:
        text = share_text(latest, t)
        controls += [
            ft.Text(t("family.share.hint")),
            # A read-only field: selectable on every platform and read out by screen readers.
            text_field(label=t("family.share.text_label"), value=text, read_only=True, multiline=True, key="share-text"),
            ft.Button(content=t("family.share.copy"), icon=ft.Icons.COPY,
                      on_click=lambda e: copy(ctl, text, "family.share.copied")),
        ]
    return controls


def copy(ctl: FamilyCtl, text: str, done_key: str) -> None:
    ctl.shell.run_async(ft.Clipboard().set, text)
    ctl.message = ctl.app.t(done_key)
    ctl.shell.render()


def status_line(app: Mamori, answer: Answer | None, age_s: int | None, shared: bool | None = None) -> str:
    t = app.t
    if answer is None:
        return t("family.status.not_shared" if shared is False else "family.status.unknown")
    key, values = age_key(age_s)
    parts = [t(answer.status.label_key), t(key, **values)]
    if answer.place:
        parts.append(answer.place)
    elif answer.has_location:
        parts.append(place_words(app, answer.lat, answer.lon))  # type: ignore[arg-type]
    if answer.is_proxy:
        parts.append(t("family.proxy_badge"))
    return " · ".join(parts)


def place_words(app: Mamori, lat: float, lon: float) -> str:
    """「〇〇小学校の近く（直線 350 m）・自宅から直線 1.2 km」: a place a family knows, never coordinates."""
    t, where = app.t, app.family.whereabouts(lat, lon)
    parts = [t("family.place.near", shelter=where.shelter, distance=format_distance(app, where.from_shelter_m))
             if where.shelter else t("family.place.on_map")]
    if where.from_home_m is not None:
        parts.append(t("dist.straight_from", distance=format_distance(app, where.from_home_m), place=t("mh.place.home")))
    return "・".join(parts)


def status_tile(app: Mamori, name: str, answer: Answer | None, age_s: int | None, key: str | None = None,
                shared: bool | None = None) -> ft.Control:
    colour, icon = STATUS_LOOK[answer.status] if answer else UNKNOWN_LOOK
    subtitle = [ft.Text(status_line(app, answer, age_s, shared), color=colour, weight=ft.FontWeight.BOLD)]
    if answer is not None and answer.message:
        subtitle.append(ft.Text(answer.message))
    return ft.ListTile(leading=ft.Icon(icon, color=colour, size=32), title=ft.Text(name),
                       subtitle=ft.Column(subtitle, spacing=2, tight=True), key=key)


def answered_by(app: Mamori, answer: Answer, names: dict[str, str]) -> str:
    """"answered by 花子 at 14:02" (the person themself, or the caregiver who answered for them)."""
    who = names.get(answer.reported_by, "") if answer.is_proxy else app.t("family.by_self")
    return app.t("family.answered_by", who=who, time=clock(answer.observed_at))


def member_rows(app: Mamori, row: MemberStatus, name: str, names: dict[str, str]) -> list[ft.Control]:
    """A member's latest answer with who gave it; an open SOS stays on top, with its message and
    place, even when a newer proxy answer exists; the other record below, so neither is lost."""
    t, person = app.t, row.member.person
    now = datetime.now(UTC)
    controls: list[ft.Control] = []
    sos = row.sos
    if sos is not None:
        place = sos.place or (place_words(app, sos.lat, sos.lon) if sos.has_location else t("family.sos.no_place"))  # type: ignore[arg-type]
        controls.append(ft.Container(ft.Column([
            ft.Text(t("family.sos.title", name=name, status=t(sos.status.label_key)), color="#FFFFFF", weight=ft.FontWeight.BOLD),
            ft.Text(sos.message or t("family.sos.no_message"), color="#FFFFFF"),
            ft.Text(t("family.sos.place", place=place), color="#FFFFFF"),
            ft.Text(answered_by(app, sos, names), color="#FFFFFF"),
        ], spacing=2, tight=True), bgcolor="#B00000", padding=12, border_radius=8, key=f"sos-{person}"))
    shown = row.answer
    controls.append(status_tile(app, name, shown, row.age_s, key=f"member-{person}", shared=row.shared))
    if shown is not None:
        controls.append(ft.Text(answered_by(app, shown, names), theme_style=ft.TextThemeStyle.BODY_SMALL))
    other = row.own if shown is row.proxy else row.proxy
    if other is not None and other is not sos:
        age = max(0, int((now - other.observed_at).total_seconds()))
        controls.append(ft.Text(t("family.other_record", line=status_line(app, other, age), by=answered_by(app, other, names)),
                                theme_style=ft.TextThemeStyle.BODY_SMALL, key=f"member-other-{person}"))
    return controls


# ---- account, groups, invites -------------------------------------------------------------------
def account_part(app: Mamori, ctl: FamilyCtl, shell) -> list[ft.Control]:
    t = app.t
    controls: list[ft.Control] = [
        ft.Text(t("family.list.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD)]
    if not ctl.logged_in or ctl.me() == LOCAL_ME:
        needs = "family.needs_platform" if not (app.link and app.link.configured) else "family.needs_login"
        if ctl.logged_in:
            needs = "family.loading_account"
        controls += [
            notice(t(needs), ft.Icons.CLOUD_OFF, key="family-needs-login"),
            ft.Button(content=t("family.to_account"), icon=ft.Icons.LOGIN, on_click=lambda e: shell.navigate("/settings/account")),
        ]
        return controls
    book = ctl.book()
    groups = book.groups()
    for group in groups:
        controls += group_part(app, ctl, group, book.family_status(group["id"]))
    controls += new_group_part(app, ctl)
    controls += sharing_part(app, ctl)
    controls += support_part(app, ctl, groups)
    sync_row: list[ft.Control] = [ft.Button(content=t("family.sync"), icon=ft.Icons.SYNC, on_click=lambda e: ctl.refresh())]
    if ctl.busy:
        sync_row.append(ft.ProgressRing(width=20, height=20))
    controls.append(ft.Row(sync_row, wrap=True))
    if ctl.synced_at:
        controls.append(ft.Text(t("family.synced_at", time=clock(ctl.synced_at, "%H:%M:%S")),
                                theme_style=ft.TextThemeStyle.BODY_SMALL))
    if ctl.is_staff():
        controls.append(ft.Button(content=t("family.hq.open"), icon=ft.Icons.ADMIN_PANEL_SETTINGS,
                                  on_click=lambda e: shell.navigate("/family/hq")))
    return controls


def group_part(app: Mamori, ctl: FamilyCtl, group: dict, rows: list[MemberStatus]) -> list[ft.Control]:
    t, me = app.t, ctl.me()
    book = ctl.book()
    owner = group["owner"] == me
    my_caregivers = {c for c, _ in book.caregivers_of(me)}
    controls: list[ft.Control] = [ft.Text(t("family.group", name=group["name"]), theme_style=ft.TextThemeStyle.TITLE_SMALL,
                                          weight=ft.FontWeight.BOLD, key=f"group-{group['id']}")]
    names = {r.member.person: r.member.name for r in rows}
    for row in rows:
        person = row.member.person
        name = row.member.name + (f" ({t('family.me')})" if person == me else "")
        controls += member_rows(app, row, name, names)
        actions: list[ft.Control] = []
        if person != me and book.may_answer_for(person):
            actions.append(ft.Button(content=t("family.proxy.answer_for", name=row.member.name), icon=ft.Icons.SUPPORT_AGENT,
                                     on_click=lambda e, p=person: ctl.open_proxy(p)))
        if row.sos is not None and person == me:
            actions.append(ft.Button(content=t("family.sos.resolve"), icon=ft.Icons.CHECK_CIRCLE,
                                     on_click=lambda e, p=person: ctl.resolve_sos(p)))
        if person != me and person in my_caregivers:
            actions.append(ft.Button(content=t("family.caregiver.drop", name=row.member.name),
                                     on_click=lambda e, p=person: ctl.drop_caregiver(p)))
        elif person != me:
            actions.append(ft.Button(content=t("family.caregiver.name", name=row.member.name),
                                     on_click=lambda e, p=person: ctl.name_caregiver(p, Relation.FAMILY)))
        if owner and person != me:
            actions.append(confirm_button(app, ctl, "remove", group["id"], person, t("family.remove", name=row.member.name)))
        if actions:
            controls.append(ft.Row(actions, wrap=True))
    pins = [family_hq.Pin(r.answer.lat, r.answer.lon, r.answer.status, r.age_s, r.answer.is_proxy, r.member.name)  # type: ignore[arg-type]
            for r in rows if r.answer is not None and r.answer.has_location]
    if pins:
        controls.append(family_hq.status_map(app, pins, t("family.map_label", name=group["name"])))
    controls.append(ft.Row([
        ft.Button(content=t("family.invite.button"), icon=ft.Icons.QR_CODE, on_click=lambda e: ctl.make_invite(group["id"])),
        ft.Button(content=t("family.export.button"), icon=ft.Icons.SAVE_ALT, on_click=lambda e: ctl.export(group["id"])),
        confirm_button(app, ctl, "leave", group["id"], me, t("family.leave")),
    ], wrap=True))
    if ctl.export_path:
        controls.append(ft.Text(t("family.export.path", path=ctl.export_path), selectable=True, key="export-path"))
    if ctl.invite and ctl.invite[0] == group["id"]:
        controls += invite_part(app, ctl, ctl.invite[1])
    return controls


def confirm_button(app: Mamori, ctl: FamilyCtl, action: str, group_id: str, person: str, label: str) -> ft.Control:
    """Leaving and removing take two taps: the second one says what will happen."""
    t = app.t
    if ctl.confirm == (action, group_id, person):
        run = ctl.leave if action == "leave" else (lambda g: ctl.remove(g, person))
        return ft.Row([
            ft.Button(content=t("family.confirm", what=label), icon=ft.Icons.WARNING, bgcolor=ft.Colors.ERROR,
                      color=ft.Colors.ON_ERROR, on_click=lambda e: run(group_id)),
            ft.Button(content=t("family.cancel"), on_click=lambda e: (setattr(ctl, "confirm", None), ctl.shell.render())),
        ], wrap=True)

    def ask(e) -> None:
        ctl.confirm = (action, group_id, person)
        ctl.shell.render()

    return ft.Button(content=label, icon=ft.Icons.LOGOUT if action == "leave" else ft.Icons.PERSON_REMOVE, on_click=ask)


def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=4, border=2)
    return buffer.getvalue()


def invite_part(app: Mamori, ctl: FamilyCtl, text: str) -> list[ft.Control]:
    t = app.t
    return [
        ft.Text(t("family.invite.hint")),
        ft.Semantics(label=t("family.invite.qr_label"), image=True,
                     content=ft.Image(src=qr_png(text), width=260, height=260, key="invite-qr")),
        text_field(label=t("family.invite.code"), value=text, read_only=True, multiline=True, text_size=11, key="invite-text"),
        ft.Button(content=t("family.invite.copy"), icon=ft.Icons.COPY, on_click=lambda e: copy(ctl, text, "family.invite.copied")),
    ]


def new_group_part(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    t = app.t
    # Typed text lives in the controller: a background redraw must not wipe it.
    return [
        ft.Text(t("family.new.title"), theme_style=ft.TextThemeStyle.TITLE_SMALL, weight=ft.FontWeight.BOLD),
        text_field(label=t("family.group_name"), max_length=60, value=ctl.group_name,
                     on_change=lambda e: setattr(ctl, "group_name", e.control.value or "")),
        ft.Button(content=t("family.create"), icon=ft.Icons.GROUP_ADD, on_click=lambda e: ctl.create_group(ctl.group_name)),
        text_field(label=t("family.join.code"), value=ctl.join_code,
                     on_change=lambda e: setattr(ctl, "join_code", e.control.value or "")),
        ft.Button(content=t("family.join.button"), icon=ft.Icons.LOGIN, on_click=lambda e: ctl.join(ctl.join_code)),
        *scan_invite(app, ctl),
    ]


def scan_invite(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    """Join by the invite QR on the other phone's screen: a camera, or a picture of it."""
    controls = scan_buttons(app, ctl.shell.render, ctl.invite_scan, lambda picture: read_invite(ctl, picture),
                            app.t("family.join.upload"))
    kind, text = ctl.invite_scan.take() or ("", "")
    if kind == "error":
        controls.append(ft.Text(text, color=ft.Colors.ERROR, key="invite-scan-error"))
    return controls


def read_invite(ctl: FamilyCtl, picture: bytes) -> None:
    texts = read_qr_texts(picture)  # NoQrFound when there is none
    ctl.join(next((x for x in texts if x.startswith(INVITE_PREFIX)), texts[0]))  # join() names a wrong code


def support_part(app: Mamori, ctl: FamilyCtl, groups: list[dict]) -> list[ft.Control]:
    """Register with the city as a person who needs support (要支援者): what support, who the
    caregiver is; asks for the care-information consent first; withdrawing deletes it."""
    t = app.t
    controls: list[ft.Control] = [ft.Text(t("family.support.title"), theme_style=ft.TextThemeStyle.TITLE_SMALL,
                                          weight=ft.FontWeight.BOLD, key="support-title")]
    if ctl.consented(DataCategory.CARE_INFORMATION):
        controls.append(ft.Text(t("family.support.is_registered")))
        controls.append(support_step(app, ctl, "withdraw", ctl.withdraw_support, ft.Icons.DELETE_OUTLINE))
        return controls
    controls.append(ft.Text(t("family.support.intro")))

    def toggle(need: str, on: bool) -> None:
        (ctl.support_needs.add if on else ctl.support_needs.discard)(need)

    controls += [checkbox(t(f"family.need.{n}"), n in ctl.support_needs, lambda e, n=n: toggle(n, bool(e.control.value)))
                 for n in NEEDS]
    controls.append(text_field(label=t("family.support.address"), value=ctl.support_address, max_length=120,
                                 on_change=lambda e: setattr(ctl, "support_address", e.control.value or "")))
    book, me = ctl.book(), ctl.me()
    carers = {m.person: m.name for g in groups for m in book.members(g["id"]) if m.person != me}
    if carers:
        controls.append(ft.Dropdown(label=t("family.support.caregiver"), helper_text=t("family.support.caregiver_help"),
                                    value=ctl.support_caregiver,
                                    options=[ft.DropdownOption(key=p, text=n) for p, n in carers.items()],
                                    on_select=lambda e: setattr(ctl, "support_caregiver", e.control.value)))
    controls.append(support_step(app, ctl, "register", ctl.register_support, ft.Icons.ACCESSIBLE))
    return controls


def support_step(app: Mamori, ctl: FamilyCtl, what: str, run, icon: str) -> ft.Control:
    """"register" / "withdraw": a button, then the ask-first box once tapped."""
    t = app.t
    if ctl.support_confirm == what:
        return confirm_box(t(f"family.support.ask_{what}"), t(f"family.support.yes_{what}"), run, ctl, "support-confirm")

    def ask(_: ft.Event) -> None:
        ctl.support_confirm = what
        ctl.shell.render()

    return ft.Button(content=t(f"family.support.{what}"), icon=icon, on_click=ask)


def confirm_box(text: str, yes: str, on_yes, ctl: FamilyCtl, key: str) -> ft.Control:
    """Ask first: what will happen, a clear yes, and cancel."""
    return ft.Container(ft.Column([
        ft.Text(text, weight=ft.FontWeight.BOLD),
        ft.Row([
            ft.Button(content=yes, icon=ft.Icons.CHECK, on_click=lambda e: on_yes()),
            ft.Button(content=ctl.app.t("family.cancel"),
                      on_click=lambda e: (setattr(ctl, "support_confirm", None), setattr(ctl, "share_confirm", None), ctl.shell.render())),
        ], wrap=True),
    ], tight=True, spacing=8), padding=12, border=ft.Border.all(2, ft.Colors.OUTLINE), border_radius=8, key=key)


def share_confirm_box(app: Mamori, ctl: FamilyCtl, category: str, recipient: str, granted: bool) -> ft.Control:
    """The same ask-first step as every consent: what, to whom, and that stopping deletes."""
    t = app.t
    what = t(f"family.sharing.{category}.{recipient}")
    return confirm_box(t("family.sharing.ask_grant" if granted else "family.sharing.ask_revoke", what=what),
                       t("family.sharing.yes_grant" if granted else "family.sharing.yes_revoke"),
                       lambda: ctl.set_sharing(category, recipient, granted), ctl, f"share-confirm-{category}-{recipient}")


def sharing_part(app: Mamori, ctl: FamilyCtl) -> list[ft.Control]:
    t = app.t
    chosen = ctl.sharing()
    controls: list[ft.Control] = [
        ft.Text(t("family.sharing.title"), theme_style=ft.TextThemeStyle.TITLE_SMALL, weight=ft.FontWeight.BOLD)]
    for category, recipient in SHARES:
        controls.append(switch(t(f"family.sharing.{category}.{recipient}"), chosen.get(f"{category}:{recipient}", False),
                               lambda e, c=category, r=recipient: ctl.ask_sharing(c, r, bool(e.control.value))))
        if ctl.share_confirm is not None and ctl.share_confirm[:2] == (category, recipient):
            controls.append(share_confirm_box(app, ctl, *ctl.share_confirm))
    if not ctl.consented(DataCategory.SAFETY_STATUS):
        controls += [ft.Text(t("family.sharing.needs_city_consent")),
                     ft.Button(content=t("family.to_account"), on_click=lambda e: ctl.shell.navigate("/settings/account"))]
    return controls
