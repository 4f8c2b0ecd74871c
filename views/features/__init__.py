"""Feature screens plugged into the shell: family, life (points, rides) and shelter check-in.

Each module offers any of:
- ``tab(app, shell) -> list[ft.Control]``: the controls of its navigation tab;
- ``pushed(app, shell, parts) -> ft.View | None``: a screen for a route below its prefix
  (``parts`` is the route split on "/", e.g. ["checkin", "desk"]), or None when not its route;
- ``banners(app, shell) -> list[ft.Control]``: things Home must show first (disaster alerts).
The shell gives each module ``shell.app``, ``shell.page``, ``shell.navigate(route)``,
``shell.render()`` and ``shell.state(name)``, a dict kept per feature while the page is open.
"""
