"""What a feature screen sees of views.shell.Shell and ft.Page, for building screens from state
in unit tests (the browser tests drive the real shell)."""
from __future__ import annotations

from collections.abc import Callable


class FakePage:
    """Background threads run at once (the next build shows their outcome) unless deferred, then
    they wait in ``threads`` for the test to run them; async tasks always wait in ``tasks``."""

    def __init__(self, route: str, defer_threads: bool) -> None:
        self.route, self._defer = route, defer_threads
        self.threads: list[tuple[Callable, tuple]] = []
        self.tasks: list[tuple[Callable, tuple]] = []

    def run_thread(self, fn: Callable, *args) -> None:
        if self._defer:
            self.threads.append((fn, args))
        else:
            fn(*args)

    def run_task(self, fn: Callable, *args) -> None:
        self.tasks.append((fn, args))


class FakeShell:
    def __init__(self, app, route: str = "/", *, defer_threads: bool = False) -> None:
        self.app, self.page = app, FakePage(route, defer_threads)
        self.routes: list[str] = []
        self.replaced: list[str] = []  # screens left with replace(): Back does not return to them
        self.renders = 0
        self.geolocator = None
        self._state: dict[str, dict] = {}

    def state(self, name: str) -> dict:
        return self._state.setdefault(name, {})

    def navigate(self, route: str) -> None:
        self.routes.append(route)
        self.page.route = route

    def replace(self, route: str) -> None:
        self.replaced.append(self.page.route)
        self.navigate(route)

    def render(self) -> None:
        self.renders += 1
