"""The app shell: navigation bar, the route table (``ROUTES``: every route and the screen that
shows it), one render at a time, and redraws when the sync engine has news for the open screen.

Tabs are the one-segment routes (/home /hazard /family /shelters /life /settings); every other
route is a screen pushed on top of its tab. Feature screens see the shell as ``views.contract.Screens``.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import flet as ft
import flet_geolocator as ftg

from app.household import plan_text
from app.state import Mamori
from app.sync import FeatureState
from geo.models import LatLon
from geo.regionfiles import RegionFileError
from geo.routing import Alternative, RouteResult, is_off_route
from protocol.hazards import HazardType, ShelterKind
from views import account, hazard, home, settings, shelters
from views.contract import Route, Screens, resolve, screen_view
from views.features import checkin, checkin_desk, family, life, life_points, life_rides
from views.map import MapScreen, TapAction
from views.theme import FONTS, apply_theme, make_theme

log = logging.getLogger(__name__)
T = TypeVar("T")
# Until Home asks for a route, the router (half a second of CPU) waits this long after a page
# opens, so the browser draws its first frame without competing for the CPU.
FIRST_FRAME_S = 2.0

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
        self.hazard_screen = hazard.HazardScreen()
        self.history: list[str] = []  # routes shown, so Back returns where the resident came from
        self._screen_state: dict[str, object] = {}
        self.pending_revoke = None  # consent category waiting for the resident's confirmation
        self.account_message: str | None = None
        # Event handlers and background threads (sync, polling) all render; one at a time, so the
        # last render reads the latest route and an older one never lands after a newer one
        # (a tab tapped while a sync redrew showed the old tab under the new route).
        self._rendering = threading.RLock()
        self.geolocator = ftg.Geolocator(on_position_change=self._moved, on_error=lambda e: None)
        page.on_route_change = lambda e: self.render()
        page.on_view_pop = self._pop
        self._seen_sync: tuple = ()
        self._unsubscribe = app.link.subscribe(self._synced) if app.link else None

    def _synced(self, states: dict[str, FeatureState]) -> None:
        """From the sync thread: redraw when a feature the open screen shows has news."""
        found = resolve(ROUTES, self.route)
        watched = found[0].watches if found else ()
        now = tuple((n, s.pending, s.last_success_at, s.last_error, s.failures)
                    for n in watched if (s := states.get(n)) is not None and not s.running)
        if now == self._seen_sync:
            return
        self._seen_sync = now
        try:
            # Through the page's executor: an update sent from the sync thread alone would wait
            # in Flet's send queue until something else woke the page's event loop.
            self.page.run_thread(self.render)
        except Exception as exc:
            log.info("page closed, sync listener stops: %s", type(exc).__name__)
            if self._unsubscribe:
                self._unsubscribe()

    @staticmethod
    def prepare(app: Mamori) -> None:
        """Before the first page opens: Flet imports a control's classes when first used, and its
        theme classes alone take about 0.1 s, so build one here, not in a resident's first render."""
        make_theme(app.prefs)

    def start(self) -> None:
        self.page.title = "Mamori 守り"
        if not self.page.web:  # the web client loads them before its first frame (assets/assets/FontManifest.json)
            self.page.fonts = FONTS
        if not self.app.evacuation.ready:  # Home's answer appears when it is built
            # With a home set, startup began the build already; a place on Home hurries it.
            self.app.evacuation.warm_up(on_ready=self.render, after_s=FIRST_FRAME_S)
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

    # ---- what a feature screen may ask (views.contract.Screens) ----
    @property
    def route(self) -> str:
        return self.page.route or "/home"

    def screen_state(self, name: str, make: Callable[[], T]) -> T:
        """A feature's own typed screen state, kept while this page is open."""
        if name not in self._screen_state:
            self._screen_state[name] = make()
        return self._screen_state[name]  # type: ignore[return-value]

    def tell(self, text: str) -> None:
        with self._rendering:
            self.page.show_dialog(ft.SnackBar(ft.Text(text), show_close_icon=True, duration=8000))

    def run_in_background(self, work: Callable[..., object], *args: object) -> None:
        self.page.run_thread(work, *args)

    def run_async(self, work: Callable[..., Awaitable[object]], *args: object) -> None:
        self.page.run_task(work, *args)

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
        apply_theme(page, app.prefs)
        # Flutter's own words (the Back button, a field's characters left) in the app's language.
        page.locale_configuration = ft.LocaleConfiguration(
            supported_locales=[ft.Locale("ja", "JP"), ft.Locale("en", "US")],
            current_locale=ft.Locale("en", "US") if app.prefs.language == "en" else ft.Locale("ja", "JP"))
        # Every render builds fresh views; their keys let Flet reconcile them with what the
        # client shows (controls keep their ids), so a tap that lands while a background redraw
        # is on its way still reaches its handler instead of a control that was replaced.
        # One key per tab: a tab opens at its top (Home's alert banner first), never at the
        # scroll offset the previous tab was left at.
        base = ft.View(
            route=f"/{tab}",
            key=f"root-{tab}",
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
        found = resolve(ROUTES, f"/{tab}")
        return found[0].build(self, found[1]) if found else []  # type: ignore[return-value]

    def _pushed(self, route: str) -> ft.View | None:
        if not is_pushed(route):
            return None  # a tab: no screen on top
        found = resolve(ROUTES, route)
        return found[0].build(self, found[1]) if found else None  # type: ignore[return-value]

    # ---- the shell's own screens (builders in ROUTES) ----
    def _home(self, p: dict[str, str]) -> list[ft.Control]:
        return home.build(self.app, self.navigate, family.banners(self.app, self), show_route=self.show_route)

    def _shelters(self, p: dict[str, str]) -> list[ft.Control]:
        return shelters.build_list(self.app, self.filter, self.set_filter, self.navigate)

    def _hazard(self, p: dict[str, str]) -> list[ft.Control]:
        return hazard.build(
            self.app,
            self.hazard_screen,
            on_hazard=self.choose_hazard,
            on_origin=lambda o: self.set_hazard_screen(origin=o),
            locate=self.locate,
            find_route=self.find_route,
            navigate=self.navigate,
            choose=self.choose_alternative,
        )

    def _settings(self, p: dict[str, str]) -> list[ft.Control]:
        return settings.build(self.app, self.change, self.navigate, self.switch_region, self.reimport, self.set_data_dir)

    def _shelter_map(self, p: dict[str, str]) -> ft.View:
        if self.map_screen is None:
            focus = self._shelter([p["kind"], p["id"]]) if "id" in p else None
            self.map_screen = MapScreen(self.app, self.navigate, self.update, focus)
        return ft.View(route=self.route, appbar=ft.AppBar(title=ft.Text(self.app.t("map.title"))), controls=self.map_screen.controls())

    def _hazard_map(self, p: dict[str, str]) -> ft.View:
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
        return ft.View(route=self.route, appbar=ft.AppBar(title=ft.Text(self.app.t("mh.map_title"))), controls=self.map_screen.controls())

    def _household(self, p: dict[str, str]) -> ft.View:
        return screen_view(self, "mh.household", hazard.build_household(self.app, self.app.evacuation.household(), self.save_household))

    def _plan(self, p: dict[str, str]) -> ft.View:
        home_point = self.app.prefs.home
        text = plan_text(self.app.evacuation.plan(self.app.prefs.hazard, home_point), self.app.t) if home_point else None
        return screen_view(self, "mh.plan", hazard.build_plan(self.app, text, self.choose_hazard, self.copy))

    def _supplies(self, p: dict[str, str]) -> ft.View:
        return screen_view(self, "mh.supplies", hazard.build_supplies(self.app, self.tick))

    def _shelter_detail(self, p: dict[str, str]) -> ft.View:
        shelter = self._shelter([p["kind"], p["id"]])
        controls = shelters.build_detail(self.app, shelter, self.navigate) if shelter else [ft.Text(self.app.t("detail.not_found"))]
        return screen_view(self, "detail.title", controls)

    def _account(self, p: dict[str, str]) -> ft.View | None:
        if not self.app.link:
            return None
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
        return screen_view(self, "settings.account", controls)

    def _about(self, p: dict[str, str]) -> ft.View:
        return screen_view(self, "about.title", settings.build_about(self.app))

    def _shelter(self, kind_and_id: list[str]):
        try:
            return self.app.shelters.get(ShelterKind(kind_and_id[0]), kind_and_id[1])
        except ValueError:
            return None

    def _pop(self, e: ft.ViewPopEvent) -> None:
        self.history.pop()  # the screen being closed
        previous = self.history.pop() if self.history else "/home"
        self.navigate(previous)


def _feature(build: Callable[[Mamori, Screens], list[ft.Control]]) -> Callable[[Screens, dict[str, str]], list[ft.Control]]:
    """A feature tab's body, from its ``tab(app, shell)``."""
    return lambda shell, p: build(shell.app, shell)


def is_pushed(route: str) -> bool:
    """A screen drawn on top of its tab: every route but the tabs themselves (/checkin is one
    segment, and still a screen on top of Home)."""
    parts = [p for p in route.split("/") if p]
    return bool(parts) and not (len(parts) == 1 and parts[0] in dict(TABS))


# The one route table: every route the app shows, the screen that builds it, and the sync
# features whose news redraw it. Tabs are the six one-segment routes in TABS; a route not listed shows its tab.
ROUTES: tuple[Route, ...] = (
    Route("/home", Shell._home, ("alerts", "shelter_status")),  # type: ignore[arg-type]
    Route("/hazard", Shell._hazard),  # type: ignore[arg-type]
    Route("/family", _feature(family.tab), ("family", "alerts")),
    Route("/shelters", Shell._shelters, ("shelter_status",)),  # type: ignore[arg-type]
    Route("/life", _feature(life.tab), ("points", "rides")),
    Route("/settings", Shell._settings),  # type: ignore[arg-type]
    Route("/shelters/map", Shell._shelter_map),  # type: ignore[arg-type]
    Route("/shelters/map/{kind}/{id}", Shell._shelter_map),  # type: ignore[arg-type]
    Route("/shelters/{kind}/{id}", Shell._shelter_detail, ("shelter_status",)),  # type: ignore[arg-type]
    Route("/hazard/map", Shell._hazard_map),  # type: ignore[arg-type]
    Route("/hazard/household", Shell._household),  # type: ignore[arg-type]
    Route("/hazard/plan", Shell._plan),  # type: ignore[arg-type]
    Route("/hazard/supplies", Shell._supplies),  # type: ignore[arg-type]
    Route("/family/hq", family.hq_view, ("family",)),
    Route("/family/proxy/{person}", family.proxy_view),
    Route("/life/points", life_points.points_view, ("points",)),
    Route("/life/points/earn", life_points.earn_view),
    Route("/life/points/spend", life_points.spend_view, ("points",)),
    Route("/life/rides", life_rides.rides_view, ("rides",)),
    Route("/life/rides/book", life_rides.book_view),
    Route("/checkin", checkin.card_view, ("device_keys",)),
    Route("/checkin/qr", checkin.qr_view),
    Route("/checkin/self", checkin.self_view, ("checkins", "device_keys")),
    Route("/checkin/survey", checkin.survey_view),
    Route("/checkin/desk", checkin_desk.desk_view, ("desk", "device_keys")),
    Route("/checkin/desk/paper", checkin_desk.paper_view),
    Route("/checkin/desk/poster", checkin_desk.poster_view),
    Route("/settings/account", Shell._account, ("outbox",)),  # type: ignore[arg-type]
    Route("/settings/about", Shell._about),  # type: ignore[arg-type]
)
