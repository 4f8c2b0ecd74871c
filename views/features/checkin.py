"""Shelter QR check-in (resident card and QR, staff desk). Screens below /checkin."""
from __future__ import annotations

import flet as ft


def pushed(app, shell, parts: list[str]) -> ft.View | None:
    return None
