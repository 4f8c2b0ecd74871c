"""What a feature screen may ask of the shell, and how routes map to screens.

Feature screens are functions of (shell, route parameters) that return a view; they read the
app (``shell.app``), keep their own typed state (``shell.screen_state``), and ask the shell
for nothing else than what ``Screens`` lists. ``views.shell.Shell`` implements it for the real
page; ``tests.fakes.FakeShell`` for unit tests.
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import flet as ft

if TYPE_CHECKING:
    from app.state import Mamori

T = TypeVar("T")


class Screens(Protocol):
    """The shell, as a feature screen sees it."""

    app: Mamori
    geolocator: Any  # flet_geolocator.Geolocator on a real page (None in unit tests)

    @property
    def route(self) -> str:
        """The route shown now, e.g. "/life/rides"."""

    def navigate(self, route: str) -> None:
        """Show another route (Back returns here)."""

    def replace(self, route: str) -> None:
        """Show another route in place of this one (a finished form): Back skips it."""

    def render(self) -> None:
        """Redraw the screen from state (safe from any thread; one render at a time)."""

    def tell(self, text: str) -> None:
        """Show a short outcome where the person is looking (a snack bar at the bottom), for an
        action whose place on the screen may have scrolled away from the top."""

    def run_in_background(self, work: Callable[..., object], *args: object) -> None:
        """Run blocking work (network) off the UI thread; it ends with ``render()`` itself."""

    def run_async(self, work: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run a coroutine on the page's event loop (camera, geolocation, clipboard)."""

    def screen_state(self, name: str, make: Callable[[], T]) -> T:
        """The typed state a feature keeps while this page is open, made on first use."""


def screen_view(shell: Screens, title_key: str, controls: list[ft.Control], **options: Any) -> ft.View:
    """A pushed screen at the current route: its title bar, its controls, scrolling."""
    return ft.View(route=shell.route, appbar=ft.AppBar(title=ft.Text(shell.app.t(title_key))), controls=controls,
                   scroll=ft.ScrollMode.AUTO, **options)


Builder = Callable[[Screens, dict[str, str]], "ft.View | list[ft.Control] | None"]


@dataclass(frozen=True, slots=True)
class Route:
    """One route: ``pattern`` segments are literal or ``{name}`` (one segment, passed to
    ``build`` by name); ``watches`` names the sync features whose news redraw the screen
    (form screens watch nothing, so a redraw never lands under the resident's fingers)."""

    pattern: str
    build: Builder
    watches: tuple[str, ...] = ()

    def match(self, route: str) -> dict[str, str] | None:
        want, got = _parts(self.pattern), _parts(route)
        if len(want) != len(got):
            return None
        params = {}
        for w, g in zip(want, got, strict=True):
            if _PARAM.fullmatch(w):
                params[w[1:-1]] = g
            elif w != g:
                return None
        return params


_PARAM = re.compile(r"\{[a-z_]+\}")


def _parts(route: str) -> list[str]:
    return [p for p in route.strip("/").split("/") if p]


def resolve(routes: Sequence[Route], route: str) -> tuple[Route, dict[str, str]] | None:
    """The first route whose pattern matches, with its parameters; None for an unknown route."""
    for candidate in routes:
        params = candidate.match(route)
        if params is not None:
            return candidate, params
    return None
