"""Family safety check (安否確認). Not built yet: the tab says so."""
from __future__ import annotations

import flet as ft

from views.widgets import not_built


def tab(app, shell) -> list[ft.Control]:
    return not_built(app, "family")


def pushed(app, shell, parts: list[str]) -> ft.View | None:
    return None


def banners(app, shell) -> list[ft.Control]:
    return []
