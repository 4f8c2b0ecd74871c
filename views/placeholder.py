"""Tabs whose features are not built yet. They say what is coming, and that it is not here yet."""
from __future__ import annotations

import flet as ft

from app.state import Mamori
from views.widgets import not_built


def build(app: Mamori, feature: str) -> list[ft.Control]:
    return not_built(app, feature)
