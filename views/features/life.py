"""Life: health points and on-demand rides. Not built yet: the tab says so."""
from __future__ import annotations

import flet as ft

from views.widgets import not_built


def tab(app, shell) -> list[ft.Control]:
    return not_built(app, "life")


def pushed(app, shell, parts: list[str]) -> ft.View | None:
    return None
