"""What a feature screen sees of views.shell.Shell (``views.contract.Screens``), for building
screens from state in unit tests (the browser tests drive the real shell)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


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
        self.told: list[str] = []  # snack bars shown
        self.geolocator = None
        self._state: dict[str, object] = {}

    @property
    def route(self) -> str:
        return self.page.route

    def screen_state(self, name: str, make: Callable[[], T]) -> T:
        if name not in self._state:
            self._state[name] = make()
        return self._state[name]  # type: ignore[return-value]

    def tell(self, text: str) -> None:
        self.told.append(text)

    def run_in_background(self, work: Callable, *args) -> None:
        self.page.run_thread(work, *args)

    def run_async(self, work: Callable, *args) -> None:
        self.page.run_task(work, *args)

    def open(self, route: str):
        """Go to ``route`` and build what the shell's route table shows there."""
        from views.contract import resolve
        from views.shell import ROUTES

        self.page.route = route
        found = resolve(ROUTES, route)
        return found[0].build(self, found[1]) if found else None

    def navigate(self, route: str) -> None:
        self.routes.append(route)
        self.page.route = route

    def replace(self, route: str) -> None:
        self.replaced.append(self.page.route)
        self.navigate(route)

    def render(self) -> None:
        self.renders += 1

    def sync(self) -> None:
        """One round of the app's sync engine, here and now (in the app it runs in the background)."""
        if self.app.link:
            self.app.link.sync.run_due()
