"""Feature screens plugged into the shell: family, life (points, rides) and shelter check-in.

Each screen is a builder ``(shell, params) -> ft.View`` listed in the shell's one route table
(``views.shell.ROUTES``); a tab's body is ``tab(app, shell) -> list[ft.Control]``, and Home shows
``family.banners(app, shell)`` first. A screen sees the shell as ``views.contract.Screens``
(navigate, render, run in background, typed screen state) and calls ``app`` services for the rest.
"""
