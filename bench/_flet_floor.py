"""A one-page Flet app for ``python -m bench startup`` to set beside Mamori: an app bar, a
navigation bar and twenty lines of text, served as Flet serves any app (its own web server and
bundled client, in the renderer Mamori runs). Its first frame is what Flet's server and client
take on this machine at this hour with next to no app in them.
``python -m bench._flet_floor --port N``."""
from __future__ import annotations

import argparse

import flet as ft

from webserver import RENDERER


def one_page(page: ft.Page) -> None:
    tabs = [ft.NavigationBarDestination(icon=ft.Icons.HOME, label="Home"),
            ft.NavigationBarDestination(icon=ft.Icons.SETTINGS, label="Settings")]
    page.views.clear()
    page.views.append(ft.View(route="/", appbar=ft.AppBar(title=ft.Text("Flet")), navigation_bar=ft.NavigationBar(destinations=tabs),
                              controls=[ft.Text(f"line {i}") for i in range(20)]))
    page.update()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    ft.run(one_page, port=parser.parse_args().port, view=ft.AppView.WEB_BROWSER, no_cdn=True, web_renderer=RENDERER)
