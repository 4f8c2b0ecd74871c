"""The app shell: navigation bar, routes, and which screen each route shows.

Routes: /home /hazard /family /shelters /life /settings (tabs), and pushed on top of a tab:
/shelters/map[/<kind>/<id>], /shelters/<kind>/<id>, /settings/about.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import flet as ft
import flet_geolocator as ftg

from app.household import plan_text
from app.state import Mamori
from geo.models import LatLon
from geo.regionfiles import RegionFileError
from geo.routing import Alternative, RouteResult, is_off_route
from protocol.hazards import HazardType, ShelterKind
from views import account, hazard, home, settings, shelters
from views.features import checkin, family, life
from views.map import MapScreen, TapAction
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


FEATURE_TABS = {"family": family, "life": life}
FEATURES = (family, life, checkin)


class Shell:
    def __init__(self, page: ft.Page, app: Mamori):
        self.page, self.app = page, app
        self.filter = shelters.ShelterFilter()
        self.map_screen: MapScreen | None = None
        self.problem: str | None = None  # last import error, shown on Home and Settings
        self.hazard_screen = hazard.HazardScreen()
        self.history: list[str] = []  # routes shown, so Back returns where the resident came from
        self._feature_state: dict[str, dict] = {}
        self.pending_revoke = None  # consent category waiting for the resident's confirmation
        self.account_message: str | None = None
        # Event handlers and background threads (sync, polling) all render; one at a time, so the
        # last render reads the latest route and an older one never lands after a newer one
        # (a tab tapped while a sync redrew showed the old tab under the new route).
        self._rendering = threading.RLock()
        self.geolocator = ftg.Geolocator(on_position_change=self._moved, on_error=lambda e: None)
        page.on_route_change = lambda e: self.render()
        page.on_view_pop = self._pop

    def start(self) -> None:
        self.page.title = "Mamori 守り"
        self.page.fonts = FONTS
        self.app.evacuation.warm_up(on_ready=self.render)  # Home's answer appears when ready
        self.render()

    def navigate(self, route: str) -> None:
        if route == self.page.route:
            self.render()
        else:
            self.page.navigate(route)

    def replace(self, route: str) -> None:
        """Go to ``route`` in place of the current screen (a finished form): Back skips it."""
        if self.history and self.history[-1] == self.page.route:
            self.history.pop()
        self.navigate(route)

    def state(self, name: str) -> dict:
        """A feature's own screen state, kept while this page is open."""
        return self._feature_state.setdefault(name, {})

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

    # ---- My Hazard ----
    def set_hazard_screen(self, **changes: object) -> None:
        self.hazard_screen = self.hazard_screen.with_(**changes)
        self.render()

    def choose_hazard(self, h: HazardType) -> None:
        self.app.set_hazard(h)
        self.set_hazard_screen(route=None)

    def find_route(self) -> None:
        origin = hazard.origin_point(self.app, self.hazard_screen.origin)
        if origin is not None:
            self.set_hazard_screen(route=self.app.evacuation.route(origin, self.app.prefs.hazard), message=None)

    def map_hazard(self, h: HazardType) -> None:
        """Another hazard on the route map: the route follows at once (never a stale one)."""
        self.app.set_hazard(h)
        origin = hazard.origin_point(self.app, self.hazard_screen.origin)
        route = self.app.evacuation.route(origin, h) if origin is not None and self.hazard_screen.route else None
        self.hazard_screen = self.hazard_screen.with_(route=route, message=None)
        self.map_screen = None
        self.render()

    def show_route(self, origin: str, route: RouteResult) -> None:
        """Home's one tap: the route it found, drawn on the route map."""
        self.hazard_screen = self.hazard_screen.with_(origin=origin, route=route, message=None)
        self.map_screen = None
        self.navigate("/hazard/map")

    def choose_alternative(self, alternative: Alternative) -> None:
        """Another shelter from the list: its own route, drawn at once."""
        origin = hazard.origin_point(self.app, self.hazard_screen.origin)
        if origin is not None:
            route = self.app.evacuation.route(origin, self.app.prefs.hazard, alternative.shelter.id)
            self.hazard_screen = self.hazard_screen.with_(route=route, message=None)
            self.map_screen = None
            self.render()

    def route_from(self, point: LatLon) -> None:
        self.app.picked_point = point
        self.hazard_screen = self.hazard_screen.with_(origin="picked")
        self.map_screen = None  # redraw the map with the new route
        self.find_route()

    def locate(self) -> None:
        self.page.run_task(self._locate)

    async def _locate(self) -> None:
        try:
            position = await self.geolocator.get_current_position()
            self.app.position = LatLon(position.latitude, position.longitude)
            self.set_hazard_screen(origin="position", message=None)
        except Exception as exc:  # permission refused, no GPS, or a browser without geolocation
            log.info("position unavailable: %s", type(exc).__name__)
            self.set_hazard_screen(message=self.app.t("mh.no_position"))

    def _moved(self, e) -> None:
        """A new position: re-route when the resident has left the route they follow."""
        self.app.position = LatLon(e.position.latitude, e.position.longitude)
        route = self.hazard_screen.route
        if self.hazard_screen.origin == "position" and route and route.path and is_off_route(self.app.position, route.path):
            self.map_screen = None
            self.find_route()

    def copy(self, text: str) -> None:
        self.page.run_task(ft.Clipboard().set, text)
        self.set_hazard_screen(message=self.app.t("mh.copied"))

    def save_household(self, household) -> None:
        self.app.evacuation.save_household(household)
        self.render()

    def tick(self, key: str, done: bool) -> None:
        self.app.evacuation.tick(key, done)

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
        with self._rendering:
            self._render()

    def update(self) -> None:
        """Send in-place changes (the map's own) without rebuilding the screen."""
        with self._rendering:
            self.page.update()

    def _render(self) -> None:
        page, app, t = self.page, self.app, self.app.t
        route = page.route or "/"
        if not self.history or self.history[-1] != route:
            self.history = [*self.history[-19:], route]
        tab = self._tab(route)
        page.theme = make_theme(app.prefs)
        # Flutter's own words (the Back button, a field's characters left) in the app's language.
        page.locale_configuration = ft.LocaleConfiguration(
            supported_locales=[ft.Locale("ja", "JP"), ft.Locale("en", "US")],
            current_locale=ft.Locale("en", "US") if app.prefs.language == "en" else ft.Locale("ja", "JP"))
        page.theme_mode = ft.ThemeMode.LIGHT
        # Flutter's animated switch to a theme with larger text froze the web client (seen in
        # Chromium): themes change at once.
        page.theme_animation_style = ft.AnimationStyle.no_animation()
        # Every render builds fresh views; their keys let Flet reconcile them with what the
        # client shows (controls keep their ids), so a tap that lands while a background redraw
        # is on its way still reaches its handler instead of a control that was replaced.
        base = ft.View(
            route=f"/{tab}",
            key="root",
            appbar=ft.AppBar(title=ft.Text(t("app.name"))),
            navigation_bar=self._nav(tab),
            scroll=ft.ScrollMode.AUTO,
            services=[self.geolocator],  # services live on the root view
            controls=self._problem() + self._tab_controls(tab),
        )
        views = [base]
        top = self._pushed(route)
        if top is not None:
            top.key = route
            views.append(top)
        if not (route.startswith("/shelters/map") or route == "/hazard/map"):
            self.map_screen = None
        page.views.clear()
        page.views.extend(views)
        page.update()

    def _nav(self, tab: str) -> ft.NavigationBar:
        names = [name for name, _ in TABS]
        return ft.NavigationBar(
            destinations=[ft.NavigationBarDestination(icon=icon, label=self.app.t(f"tab.{name}")) for name, icon in TABS],
            selected_index=names.index(tab),
            on_change=lambda e: self.navigate(f"/{TABS[e.control.selected_index][0]}"),
        )

    def _problem(self) -> list[ft.Control]:
        if not self.problem:
            return []
        return [ft.Container(ft.Text(self.app.t("common.import_failed", problem=self.problem)), bgcolor=ft.Colors.ERROR_CONTAINER, padding=10)]

    def _tab_controls(self, tab: str) -> list[ft.Control]:
        app = self.app
        if tab == "home":
            return home.build(app, self.navigate, family.banners(app, self), show_route=self.show_route)
        if tab == "shelters":
            return shelters.build_list(app, self.filter, self.set_filter, self.navigate)
        if tab == "hazard":
            return hazard.build(
                app,
                self.hazard_screen,
                on_hazard=self.choose_hazard,
                on_origin=lambda o: self.set_hazard_screen(origin=o),
                locate=self.locate,
                find_route=self.find_route,
                navigate=self.navigate,
                choose=self.choose_alternative,
            )
        if tab == "settings":
            return settings.build(app, self.change, self.navigate, self.switch_region, self.reimport, self.set_data_dir)
        return FEATURE_TABS[tab].tab(app, self)

    def _pushed(self, route: str) -> ft.View | None:
        t = self.app.t
        parts = route.strip("/").split("/")
        if parts[:2] == ["shelters", "map"]:
            if self.map_screen is None:
                focus = self._shelter(parts[2:4]) if len(parts) == 4 else None
                self.map_screen = MapScreen(self.app, self.navigate, self.update, focus)
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("map.title"))), controls=self.map_screen.controls())
        if parts == ["hazard", "map"]:
            if self.map_screen is None:
                self.map_screen = MapScreen(
                    self.app,
                    self.navigate,
                    self.update,
                    hazard_areas=self.app.evacuation.shapes,
                    route=self.hazard_screen.route,
                    tap_actions=[TapAction("mh.route_from_here", ft.Icons.DIRECTIONS_WALK, self.route_from)],
                    footer=hazard.route_summary(self.app, self.hazard_screen.route, self.hazard_screen.origin, None,
                                                self.choose_alternative) if self.hazard_screen.route else [],
                    on_hazard=self.map_hazard,
                )
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("mh.map_title"))), controls=self.map_screen.controls())
        if parts == ["hazard", "household"]:
            controls = hazard.build_household(self.app, self.app.evacuation.household(), self.save_household)
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("mh.household"))), controls=controls, scroll=ft.ScrollMode.AUTO)
        if parts == ["hazard", "plan"]:
            home_point = self.app.prefs.home
            text = plan_text(self.app.evacuation.plan(self.app.prefs.hazard, home_point), t) if home_point else None
            controls = hazard.build_plan(self.app, text, self.choose_hazard, self.copy)
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("mh.plan"))), controls=controls, scroll=ft.ScrollMode.AUTO)
        if parts == ["hazard", "supplies"]:
            controls = hazard.build_supplies(self.app, self.tick)
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("mh.supplies"))), controls=controls, scroll=ft.ScrollMode.AUTO)
        if parts[0] == "shelters" and len(parts) == 3:
            shelter = self._shelter(parts[1:3])
            controls = shelters.build_detail(self.app, shelter, self.navigate) if shelter else [ft.Text(t("detail.not_found"))]
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("detail.title"))), controls=controls, scroll=ft.ScrollMode.AUTO)
        for feature in FEATURES:
            view = feature.pushed(self.app, self, parts)
            if view is not None:
                return view
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
            return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(t("about.title"))), controls=settings.build_about(self.app),
                           scroll=ft.ScrollMode.AUTO)
        return None

    def _shelter(self, kind_and_id: list[str]):
        try:
            return self.app.shelters.get(ShelterKind(kind_and_id[0]), kind_and_id[1])
        except ValueError:
            return None

    def _pop(self, e: ft.ViewPopEvent) -> None:
        self.history.pop()  # the screen being closed
        previous = self.history.pop() if self.history else "/home"
        self.navigate(previous)
