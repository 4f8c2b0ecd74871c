"""The app shell: navigation bar, routes, and which screen each route shows.

Routes: /home /hazard /family /shelters /life /settings (tabs), and pushed on top of a tab:
/shelters/map[/<kind>/<id>], /shelters/<kind>/<id>, /settings/about.
"""
from __future__ import annotations

import logging
from pathlib import Path

import flet as ft

from app.models import ShelterKind
from app.state import Mamori
from offline.regionfiles import RegionFileError
from views import account, home, placeholder, settings, shelters
from views.map import MapScreen
from views.theme import FONTS, make_theme

log = logging.getLogger(__name__)

TABS = (
    ("home", ft.Icons.HOME_OUTLINED),
    ("hazard", ft.Icons.WARNING_AMBER),
    ("family", ft.Icons.FAMILY_RESTROOM),
    ("shelters", ft.Icons.HOLIDAY_VILLAGE_OUTLINED),
    ("life", ft.Icons.FAVORITE_BORDER),
    ("settings", ft.Icons.SETTINGS_OUTLINED),
)


class Shell:
    def __init__(self, page: ft.Page, app: Mamori):
        self.page, self.app = page, app
        self.filter = shelters.ShelterFilter()
        self.map_screen: MapScreen | None = None
        self.problem: str | None = None  # last import error, shown on Home and Settings
        self.pending_revoke = None  # consent category waiting for the resident's confirmation
        self.account_message: str | None = None
        page.on_route_change = lambda e: self.render()
        page.on_view_pop = self._pop

    def start(self) -> None:
        self.page.title = "Mamori 守り"
        self.page.fonts = FONTS
        self.render()

    def navigate(self, route: str) -> None:
        if route == self.page.route:
            self.render()
        else:
            self.page.navigate(route)

    # ---- actions the screens call ----
    def change(self, **prefs: object) -> None:
        self.app.update_prefs(**prefs)
        self.render()

    def set_filter(self, f: shelters.ShelterFilter) -> None:
        self.filter = f
        self.render()

    def switch_region(self, code: str) -> None:
        self._guard(lambda: self.app.switch_region(code))
        self.filter = shelters.ShelterFilter()
        self.render()

    def set_data_dir(self, folder: str) -> None:
        self._guard(lambda: self.app.set_data_dir(Path(folder).expanduser()))
        self.render()

    def reimport(self) -> None:
        self._guard(lambda: self.app.ensure_imported(force=True))
        self.render()

    def login(self) -> None:
        self.page.run_thread(self._login)

    def _login(self) -> None:
        try:
            self.app.link.login()
            self.account_message = None  # the screen itself now says who is logged in
        except Exception as exc:  # network, browser or provider trouble: say what, keep going
            log.warning("login failed: %s", type(exc).__name__)
            self.account_message = self.app.t("account.login_failed", error=str(exc) or type(exc).__name__)
        self.render()

    def logout(self) -> None:
        self.app.link.logout()
        self.account_message = None
        self.render()

    def set_consent(self, category, granted: bool) -> None:
        self.app.link.set_consent(category, granted)
        self.pending_revoke = None
        self.render()

    def ask_revoke(self, category) -> None:
        self.pending_revoke = category
        self.render()

    def _guard(self, action) -> None:
        """Run an import; a bad file becomes a message on screen, and the old data stays."""
        try:
            action()
            self.problem = None
        except (RegionFileError, LookupError) as exc:
            log.warning("region import failed: %s", exc)
            self.problem = str(exc)

    # ---- rendering ----
    def _tab(self, route: str) -> str:
        name = route.strip("/").split("/")[0] or "home"
        return name if name in dict(TABS) else "home"

    def render(self) -> None:
        page, app, t = self.page, self.app, self.app.t
        route = page.route or "/"
        tab = self._tab(route)
        page.theme = make_theme(app.prefs)
        page.theme_mode = ft.ThemeMode.LIGHT
        nav = ft.NavigationBar(
            selected_index=[name for name, _ in TABS].index(tab),
            destinations=[ft.NavigationBarDestination(icon=icon, label=t(f"tab.{name}")) for name, icon in TABS],
            on_change=lambda e: self.navigate(f"/{TABS[e.control.selected_index][0]}"),
        )
        views = [
            ft.View(
                route=f"/{tab}",
                appbar=ft.AppBar(title=ft.Text(t("app.name"))),
                controls=self._problem() + self._tab_controls(tab),
                navigation_bar=nav,
                scroll=ft.ScrollMode.AUTO,
            )
        ]
        top = self._pushed(route)
        if top is not None:
            views.append(top)
        if not route.startswith("/shelters/map"):
            self.map_screen = None
        page.views.clear()
        page.views.extend(views)
        page.update()

    def _problem(self) -> list[ft.Control]:
        if not self.problem:
            return []
        return [ft.Container(ft.Text(self.app.t("common.import_failed", problem=self.problem)), bgcolor=ft.Colors.ERROR_CONTAINER, padding=10)]

    def _tab_controls(self, tab: str) -> list[ft.Control]:
        app = self.app
        if tab == "home":
            return home.build(app, self.navigate)
        if tab == "shelters":
            return shelters.build_list(app, self.filter, self.set_filter, self.navigate)
        if tab == "settings":
            return settings.build(app, self.change, self.navigate, self.switch_region, self.reimport, self.set_data_dir)
        return placeholder.build(app, tab)

    def _pushed(self, route: str) -> ft.View | None:
        t = self.app.t
        parts = route.strip("/").split("/")
        if parts[:2] == ["shelters", "map"]:
            if self.map_screen is None:
                focus = self._shelter(parts[2:4]) if len(parts) == 4 else None
                self.map_screen = MapScreen(self.app, self.navigate, self.page.update, focus)
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("map.title"))), controls=self.map_screen.controls())
        if parts[0] == "shelters" and len(parts) == 3:
            shelter = self._shelter(parts[1:3])
            controls = shelters.build_detail(self.app, shelter, self.navigate) if shelter else [ft.Text(t("detail.not_found"))]
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("detail.title"))), controls=controls, scroll=ft.ScrollMode.AUTO)
        if parts == ["settings", "account"] and self.app.link:
            controls = account.build(
                self.app,
                self.app.link,
                login=self.login,
                logout=self.logout,
                set_consent=self.set_consent,
                pending_revoke=self.pending_revoke,
                ask_revoke=self.ask_revoke,
                message=self.account_message,
            )
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("settings.account"))), controls=controls, scroll=ft.ScrollMode.AUTO)
        if parts == ["settings", "about"]:
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("about.title"))), controls=settings.build_about(self.app), scroll=ft.ScrollMode.AUTO)
        return None

    def _shelter(self, kind_and_id: list[str]):
        try:
            return self.app.shelters.get(ShelterKind(kind_and_id[0]), kind_and_id[1])
        except ValueError:
            return None

    def _pop(self, e: ft.ViewPopEvent) -> None:
        below = self.page.views[-2].route if len(self.page.views) > 1 else "/home"
        self.navigate(below)
