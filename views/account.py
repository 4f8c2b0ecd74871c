"""Account and consent: log in to the city platform, choose what may be shared, see history and sync."""
from __future__ import annotations

from collections.abc import Callable

import flet as ft

from app.connection import PlatformLink
from app.consent import USES, DataCategory
from app.state import Mamori
from views.widgets import heading, local_time, notice, switch


def build(
    app: Mamori,
    link: PlatformLink,
    *,
    login: Callable[[], None],
    logout: Callable[[], None],
    set_consent: Callable[[DataCategory, bool], None],
    pending_revoke: DataCategory | None,
    ask_revoke: Callable[[DataCategory | None], None],
    message: str | None,
) -> list[ft.Control]:
    t = app.t
    controls: list[ft.Control] = [heading(t("consent.screen.title")), ft.Text(t("consent.screen.intro"))]
    if message:
        controls.append(notice(message, ft.Icons.INFO_OUTLINE, key="account-message"))
    controls += _account(app, link, login, logout)
    for choice in link.choices():
        category = choice.category
        controls += [
            switch(t(choice.title_key), choice.granted,
                   lambda e, c=category: set_consent(c, True) if e.control.value else ask_revoke(c)),
            ft.Text(t(f"consent.{category.value}.detail")),
            ft.Text(f"{t(choice.purpose_key)} / {t(choice.recipient_key)}", theme_style=ft.TextThemeStyle.BODY_SMALL),
        ]
        if pending_revoke is category:
            controls.append(
                ft.Container(
                    ft.Column(
                        [
                            ft.Text(t("consent.revoke.confirm")),
                            ft.Row(
                                [
                                    ft.Button(t("account.revoke"), icon=ft.Icons.DELETE_FOREVER, on_click=lambda e,
                                              c=category: set_consent(c, False)),
                                    ft.Button(t("account.keep"), on_click=lambda e: ask_revoke(None)),
                                ],
                                wrap=True,
                            ),
                        ]
                    ),
                    padding=10,
                    border=ft.Border.all(2, ft.Colors.ERROR),
                    border_radius=8,
                    key=f"revoke-confirm-{category.value}",
                )
            )
    history = link.history()
    controls.append(ft.Text(t("consent.history.title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM))
    if not history:
        controls.append(ft.Text(t("account.history_empty")))
    for event in reversed(history[-20:]):
        to = f" ({t(f'consent.recipient.{event.recipient}')})" if event.recipient != USES[event.category].recipient else ""
        what = t(f"consent.history.{event.action}", date=local_time(event.at))
        controls.append(ft.Text(f"{t(f'consent.{event.category.value}.title')}{to}: {what}"))
    controls += _sync(app, link)
    return controls


def _account(app: Mamori, link: PlatformLink, login: Callable[[], None], logout: Callable[[], None]) -> list[ft.Control]:
    t = app.t
    if not link.configured:
        return [notice(t("account.no_platform"), ft.Icons.CLOUD_OFF, key="no-platform")]
    rows: list[ft.Control] = [ft.Text(t("account.platform", url=link.platform_url), selectable=True)]
    if link.logged_in:
        rows += [
            ft.Text(t("account.logged_in_as", name=link.display_name or t("account.someone")), key="logged-in"),
            ft.Button(t("account.logout"), icon=ft.Icons.LOGOUT, on_click=lambda e: logout()),
        ]
    else:
        rows += [ft.Text(t("account.logged_out")), ft.Button(t("account.login"), icon=ft.Icons.LOGIN, on_click=lambda e: login())]
    return rows


def _sync(app: Mamori, link: PlatformLink) -> list[ft.Control]:
    t = app.t
    state = link.state()
    if state is None:
        return []
    rows: list[ft.Control] = [
        ft.Text(t("account.sync_title"), theme_style=ft.TextThemeStyle.TITLE_MEDIUM),
        ft.Text(t("sync.queued", n=state.queued), key="sync-queued"),
    ]
    if state.rejected:
        rows.append(ft.Text(t("sync.rejected", n=state.rejected)))
    if state.last_error:
        rows.append(ft.Text(t("account.sync_error", error=state.last_error)))
    for name, fresh in state.datasets.items():
        when = t("sync.updated", time=local_time(fresh.last_success_at)) if fresh.last_success_at else t("sync.never")
        rows.append(ft.Text(f"{t(f'sync.dataset.{name}')}: {when}"))
    return rows
