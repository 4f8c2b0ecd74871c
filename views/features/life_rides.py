"""On-demand ride screens (/life/rides, /life/rides/book); the rules and the booking live in
``app.rides`` (``app.rides`` service on the app state).

The booking form is one column of large choices in numbered steps (from, to, when, who),
then a quote and a confirm. A booking is saved on the phone first; until the platform answers
it is shown as "not yet sent", never as confirmed. The app's sync engine sends it and polls its
status (every few seconds while a ride is under way), whatever screen is open; a fare chosen
for points is stored on the booking and paid when the ride is done.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flet as ft

from app.platform import PlatformError
from app.rides import FEATURE, Booking, FormProblem, Quote, RideError, RideErrorCode, RideForm, RideStatus, build_request
from app.state import Mamori
from geo.models import LatLon
from protocol.hazards import ShelterKind
from views.contract import Screens, screen_view
from views.widgets import checkbox, clock, heading, helped, notice, radio, text_field

log = logging.getLogger(__name__)

STOP_CHOICES = 6


@dataclass
class RidesScreen(RideForm):
    """The booking form (``app.rides.RideForm``) and the screen's messages, kept while the page is open."""

    quote: Quote | None = None
    message: str | None = None
    error: bool = False
    message_route: str = ""
    busy: bool = False
    booked: str | None = None  # the booking just made: its message follows what the sync engine did with it
    cancelled: str | None = None  # the booking just cancelled: likewise
    confirm_cancel: str | None = None  # the booking whose cancel waits for "yes"


def screen(shell: Screens) -> RidesScreen:
    return shell.screen_state("rides", RidesScreen)


def _logged_in(app: Mamori) -> bool:
    return bool(app.link and app.link.logged_in)


def status_line(app: Mamori) -> str:
    """One line for the Life tab: the next ride, else that there is none."""
    b = app.rides.next_ride()
    if b is None:
        return app.t("rides.tab.none")
    return app.t("rides.tab.next", status=app.t(b.status_key), to=place_name(app, b.dropoff or b.request.dropoff))


# ---- actions ------------------------------------------------------------------------------------
def _say(shell, text: str, error: bool, route: str | None = None) -> None:
    st = screen(shell)
    st.message, st.error, st.message_route, st.booked, st.cancelled = text, error, route or shell.route, None, None


def _ride_error(app: Mamori, err: RideError) -> str:
    text = app.t(err.message_key)
    return f"{text} ({err.detail})" if app.t.lang == "en" and err.detail else text


def ask_quote(app: Mamori, shell) -> None:
    """Needs the platform: asked on a thread, shown when it comes back."""
    st = screen(shell)
    try:
        request = build_request(app, st)
    except FormProblem as err:
        _say(shell, app.t(err.key), True)
        shell.render()
        return
    if st.busy:
        return
    route = shell.route
    _say(shell, app.t("rides.quote.asking"), False)
    st.quote, st.busy = None, True
    shell.render()

    def work() -> None:
        try:
            st.quote = app.rides.quote(request)
            st.message = None
        except RideError as err:
            _say(shell, _ride_error(app, err), True, route)
        except PlatformError as err:
            log.warning("rides: platform error %s", type(err).__name__)
            _say(shell, app.t("rides.error.platform"), True, route)
        finally:
            st.busy = False
            shell.render()

    shell.run_in_background(work)


def confirm(app: Mamori, shell) -> None:
    st = screen(shell)
    try:
        request = build_request(app, st)
        fare_points = st.quote.points_usable if (st.pay_points and st.quote) else 0
        booking = app.rides.confirm(request, fare_points)
    except FormProblem as err:
        _say(shell, app.t(err.key), True)
        shell.render()
        return
    except RideError as err:
        _say(shell, _ride_error(app, err), True)
        shell.render()
        return
    st.quote = None
    _say(shell, "", False, "/life/rides")
    st.booked = booking.id  # "sending", then what the platform said (the list shows it too)
    shell.replace("/life/rides")  # Back from the ride's status never reopens the finished form


def booked_text(app: Mamori, booking: Booking) -> str:
    if booking.status is RideStatus.NOT_SENT:
        state = app.link.sync.feature_state(FEATURE) if app.link else None
        waiting = not _logged_in(app) or (state is not None and state.offline)
        return app.t("rides.notice.not_sent") if waiting else app.t("rides.book.sending")
    if booking.status is RideStatus.REJECTED:
        return f"{app.t(booking.status_key)}: {app.t(booking.reason_key or 'rides.error.platform')}"
    return app.t("rides.done.booked")


def cancelled_text(app: Mamori, booking: Booking) -> str:
    if booking.cancel_pending:
        return app.t("rides.notice.cancel_pending")
    if booking.status is RideStatus.CANCELLED:
        return app.t("rides.done.cancelled")
    return app.t(RideErrorCode.NOT_CANCELLABLE.message_key)  # the platform said no: on board already


def ask_cancel(shell, booking_id: str | None) -> None:
    """The cancel button asks first (``booking_id``); None: the resident kept the ride."""
    screen(shell).confirm_cancel = booking_id
    shell.render()


def cancel_terms(app: Mamori, b: Booking) -> str:
    """What a cancel costs, said before it is done: no fee, and points are taken only when a ride is done."""
    text = app.t("rides.cancel.ask") + " " + app.t("rides.cancel.no_fee")
    if b.fare_points and not b.fare_points_paid:
        text += " " + app.t("rides.cancel.points_kept", points=b.fare_points)
    return text


def cancel(app: Mamori, shell, booking_id: str) -> None:
    screen(shell).confirm_cancel = None
    try:
        app.rides.cancel(booking_id)
    except RideError as err:
        _say(shell, _ride_error(app, err), True)
    else:
        _say(shell, "", False)
        screen(shell).cancelled = booking_id  # "waiting to send", then what the platform said
    shell.render()


def rebook(app: Mamori, shell, booking_id: str) -> None:
    try:
        booking = app.rides.rebook(booking_id)
    except RideError as err:
        _say(shell, _ride_error(app, err), True)
    else:
        _say(shell, "", False)
        screen(shell).booked = booking.id
    shell.render()


def place_name(app: Mamori, place) -> str:
    return place.name or app.t(f"rides.place.{place.kind.value}")


# ---- screens --------------------------------------------------------------------------------------
def rides_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return screen_view(shell, "rides.title", main_screen(shell.app, shell))


def book_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return screen_view(shell, "rides.book.title", book_screen(shell.app, shell))


def _message(app: Mamori, shell) -> list[ft.Control]:
    st = screen(shell)
    if st.booked and shell.route == "/life/rides":
        booking = app.rides.book.get(st.booked)
        st.message, st.error = booked_text(app, booking), booking.status is RideStatus.REJECTED
    elif st.cancelled and shell.route == "/life/rides":
        booking = app.rides.book.get(st.cancelled)
        st.message = cancelled_text(app, booking)
        st.error = not booking.cancel_pending and booking.status is not RideStatus.CANCELLED
    if not st.message or st.message_route != shell.route:
        return []
    icon = ft.Icons.ERROR_OUTLINE if st.error else ft.Icons.INFO_OUTLINE
    return [notice(st.message, icon, key="rides-error" if st.error else "rides-message")]


def _big(text: str, icon: str, on_click, *, disabled: bool = False) -> ft.Button:
    """A large button for the main steps (elderly residents first)."""
    return ft.Button(content=ft.Text(text, size=18), icon=icon, on_click=on_click, disabled=disabled,
                     style=ft.ButtonStyle(padding=ft.Padding.symmetric(horizontal=20, vertical=14)))


def main_screen(app: Mamori, shell) -> list[ft.Control]:
    t = app.t
    controls: list[ft.Control] = [notice(t("rides.notice.simulated"), ft.Icons.SMART_TOY_OUTLINED, key="rides-simulated"), *_message(app, shell)]
    if not (app.link and app.link.configured):
        controls.append(notice(t("rides.offline.no_platform"), ft.Icons.CLOUD_OFF))
    elif not app.link.logged_in:
        controls += [notice(t("rides.offline.logged_out"), ft.Icons.CLOUD_OFF, key="rides-logged-out"),
                     ft.Button(t("points.account"), icon=ft.Icons.MANAGE_ACCOUNTS, on_click=lambda e: shell.navigate("/settings/account"))]
    controls.append(ft.Row([_big(t("rides.book.title"), ft.Icons.ADD, lambda e: shell.navigate("/life/rides/book")),
                            ft.Button(t("rides.refresh"), icon=ft.Icons.REFRESH, on_click=lambda e: app.rides.refresh())],
                           wrap=True))
    history = app.rides.history(30)
    active = [b for b in history if not b.status.final]
    done = [b for b in history if b.status.final]
    controls.append(heading(t("rides.active")))
    controls += [booking_card(app, shell, b) for b in active] or [ft.Text(t("rides.tab.none"))]
    controls.append(heading(t("rides.history")))
    controls += [booking_card(app, shell, b) for b in done] or [ft.Text(t("rides.history_empty"))]
    return controls


def booking_card(app: Mamori, shell, b: Booking) -> ft.Control:
    t, st = app.t, screen(shell)
    route = f"{place_name(app, b.request.pickup)} → {place_name(app, b.dropoff or b.request.dropoff)}"
    start = clock(b.request.earliest, "%m/%d %H:%M") if b.request.earliest else ""
    lines: list[ft.Control] = [
        ft.Text(t(b.status_key), theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD, key=f"ride-status-{b.id}"),
        ft.Text(route),
        ft.Text(t("rides.card.party", start=start, passengers=b.request.passengers)),
    ]
    if b.request.wheelchairs:
        lines.append(ft.Text(t("rides.card.wheelchairs", n=b.request.wheelchairs)))
    if b.request.on_behalf_of:
        lines.append(ft.Text(t("rides.booking.on_behalf_of", name=b.request.on_behalf_of)))
    if b.status is RideStatus.NOT_SENT:
        lines.append(ft.Text(t("rides.notice.not_sent"), color=ft.Colors.ERROR))
    if b.cancel_pending:
        lines.append(ft.Text(t("rides.notice.cancel_pending"), color=ft.Colors.ERROR))
    if b.pickup_eta and not b.status.final:
        arrival = clock(b.arrival) if b.arrival else "—"
        lines.append(ft.Text(t("rides.card.eta", pickup=clock(b.pickup_eta), arrival=arrival)))
    if b.vehicle_id and not b.status.final:
        lines.append(ft.Text(t("rides.card.vehicle", vehicle=b.vehicle_id)))
    if b.fare_yen is not None:
        lines.append(ft.Text(t("rides.card.fare", fare=b.fare_yen)))
    if b.fare_points and not b.fare_points_paid:
        lines.append(ft.Text(t("rides.card.points_on_done", points=b.fare_points)))
    if b.reason_key and b.status in (RideStatus.CANCELLED, RideStatus.REJECTED):
        lines.append(ft.Text(t(b.reason_key)))
    actions: list[ft.Control] = []
    if not b.status.final and b.status is not RideStatus.ON_BOARD and not b.cancel_pending:
        if st.confirm_cancel == b.id:
            lines.append(ft.Text(cancel_terms(app, b), weight=ft.FontWeight.BOLD, key=f"ride-cancel-ask-{b.id}"))
            actions.append(ft.Button(t("rides.cancel.yes"), icon=ft.Icons.CANCEL_OUTLINED, disabled=st.busy,
                                     on_click=lambda e: cancel(app, shell, b.id)))
            actions.append(ft.Button(t("rides.cancel.keep"), icon=ft.Icons.UNDO, on_click=lambda e: ask_cancel(shell, None)))
        else:
            actions.append(ft.Button(t("rides.action.cancel"), icon=ft.Icons.CANCEL_OUTLINED, disabled=st.busy,
                                     on_click=lambda e: ask_cancel(shell, b.id)))
    if b.status.final:
        actions.append(ft.Button(t("rides.action.rebook"), icon=ft.Icons.REPLAY, disabled=st.busy,
                                 on_click=lambda e: rebook(app, shell, b.id)))
    if actions:
        lines.append(ft.Row(actions, wrap=True))
    return ft.Row([ft.Container(ft.Column(lines, spacing=4), padding=12, border=ft.Border.all(1, ft.Colors.OUTLINE),
                                border_radius=8, key=f"ride-{b.id}", expand=True)])


def _step(text: str) -> ft.Text:
    return ft.Text(text, theme_style=ft.TextThemeStyle.HEADLINE_SMALL, weight=ft.FontWeight.BOLD)


def _field(st: RidesScreen, name: str, label: str, **kwargs) -> ft.TextField:
    def keep(e) -> None:
        st.fields[name] = e.control.value

    return text_field(label=label, value=st.fields.get(name, ""), on_change=keep, text_size=18, **kwargs)


def _choices(value: str, options: list[tuple[str, str]], on_change: Callable[[str], None]) -> ft.RadioGroup:
    return ft.RadioGroup(
        value=value or None,
        on_change=lambda e: on_change(e.control.value or ""),
        content=ft.Column([radio(v, label) for v, label in options], spacing=0),
    )


def book_screen(app: Mamori, shell) -> list[ft.Control]:
    t, st = app.t, screen(shell)

    def set_(**change: Any) -> None:
        for name, value in change.items():
            setattr(st, name, value)
        st.quote = None  # a change invalidates the quote
        shell.render()

    pickup_options = [("stop", t("rides.place.stop"))]
    if app.prefs.home:
        pickup_options.insert(0, ("home", t("rides.place.home")))
    if app.position:
        pickup_options.insert(0, ("current", t("rides.place.current")))
    dropoff_options = [("stop", t("rides.place.stop")), ("shelter", t("rides.place.shelter"))]
    if app.prefs.home:
        dropoff_options.append(("home", t("rides.place.home")))
    if app.picked_point:
        dropoff_options.append(("point", t("rides.place.point")))
    controls: list[ft.Control] = [
        notice(t("rides.notice.simulated"), ft.Icons.SMART_TOY_OUTLINED),
        _step(t("rides.book.step_from")),
        _choices(st.pickup, pickup_options, lambda v: set_(pickup=v)),
    ]
    if st.pickup == "stop":
        controls += stop_picker(app, shell, "pickup")
    controls += [_step(t("rides.book.step_to")), _choices(st.dropoff, dropoff_options, lambda v: set_(dropoff=v))]
    if st.dropoff in ("stop", "shelter"):
        controls += stop_picker(app, shell, "dropoff")
    controls.append(ft.Text(t("rides.book.hospital_note"), theme_style=ft.TextThemeStyle.BODY_SMALL))
    controls += [_step(t("rides.book.step_when")),
                 _choices(st.when, [("now", t("rides.book.now")), ("later", t("rides.book.later"))], lambda v: set_(when=v))]
    if st.when == "later":
        controls += [_field(st, "day", t("rides.book.day"), **helped(t("rides.book.day_help"))),
                     ft.Row([_field(st, "start", t("rides.book.start"), expand=True, **helped(t("rides.book.start_help"))),
                             _field(st, "end", t("rides.book.end"), expand=True, **helped(t("rides.book.end_help")))],
                            vertical_alignment=ft.CrossAxisAlignment.START)]
    number = ft.KeyboardType.NUMBER
    controls += [
        _step(t("rides.book.step_who")),
        _field(st, "passengers", t("rides.book.passengers"), keyboard_type=number, hint_text="1", **helped(t("rides.book.passengers_help"))),
        _field(st, "companions", t("rides.book.companions"), keyboard_type=number, hint_text="0", **helped(t("rides.book.companions_help"))),
        _field(st, "wheelchairs", t("rides.book.wheelchairs"), keyboard_type=number, hint_text="0"),
        checkbox(t("rides.book.behalf"), st.behalf, lambda e: set_(behalf=bool(e.control.value))),
    ]
    if st.behalf:
        controls += [_field(st, "behalf_id", t("rides.book.behalf_id")),
                     ft.Text(t("rides.book.behalf_help"), theme_style=ft.TextThemeStyle.BODY_SMALL)]
    controls += [_step(t("rides.book.step_confirm")), *_message(app, shell)]
    if st.quote:
        controls += quote_card(app, shell, st.quote)
    controls.append(ft.Row([_big(t("rides.book.quote"), ft.Icons.CALCULATE_OUTLINED, lambda e: ask_quote(app, shell), disabled=st.busy),
                            _big(t("rides.book.confirm"), ft.Icons.CHECK, lambda e: confirm(app, shell), disabled=st.busy)], wrap=True))
    if not _logged_in(app):
        controls.append(ft.Text(t("rides.book.offline_help")))
    return controls


def stop_picker(app: Mamori, shell, which: str) -> list[ft.Control]:
    """Nearest stops (or those matching a typed name) as large radio choices."""
    t, st = app.t, screen(shell)
    query = st.fields.get(f"{which}_query", "")
    kind = ShelterKind.DESIGNATED_SHELTER if which == "dropoff" and st.dropoff == "shelter" else None
    origin = app.position or app.prefs.home or _centre(app)
    hits = app.shelters.search(query, kind=kind, origin=origin)[:STOP_CHOICES * 2] if query.strip() else \
        [h for h in app.shelters.nearest(origin, STOP_CHOICES * 3) if kind is None or h.shelter.kind is kind]
    chosen = getattr(st, f"{which}_stop")

    def search(e) -> None:
        st.fields[f"{which}_query"] = e.control.value

    def pick(value: str) -> None:
        setattr(st, f"{which}_stop", value)
        st.quote = None
        shell.render()

    options: list[tuple[str, str]] = []
    for h in hits:  # GSI lists a site and a shelter of one facility apart: offer it once
        if h.shelter.name not in {name for _, name in options}:
            options.append((h.shelter.id, h.shelter.name))
    options = options[:STOP_CHOICES]
    if chosen and chosen not in {v for v, _ in options}:
        for kind_ in ShelterKind:
            if (known := app.shelters.get(kind_, chosen)) is not None:
                options.insert(0, (known.id, known.name))
                break
    return [
        ft.Row([text_field(label=t(f"rides.book.search_{which}"), value=query, on_change=search, on_submit=lambda e: shell.render(),
                             text_size=18, expand=True),
                ft.Button(t(f"rides.book.search_go_{which}"), icon=ft.Icons.SEARCH, on_click=lambda e: shell.render())]),
        _choices(chosen, options, pick) if options else ft.Text(t("rides.book.no_stops")),
    ]


def _centre(app: Mamori) -> LatLon:
    bounds = app.shelters.bounds()
    if bounds is None:
        return LatLon(0.0, 0.0)
    return LatLon((bounds[0].lat + bounds[1].lat) / 2, (bounds[0].lon + bounds[1].lon) / 2)


def quote_card(app: Mamori, shell, q: Quote) -> list[ft.Control]:
    t, st = app.t, screen(shell)
    summary = t("rides.quote.summary", pickup=clock(q.pickup_eta),
                arrival=clock(q.arrival), fare=q.fare_yen, points=q.points_usable)
    rows: list[ft.Control] = [ft.Text(summary, size=18, weight=ft.FontWeight.BOLD, key="rides-quote")]
    if q.pickup is not None and q.earliest is not None and q.latest is not None:  # what is being booked, in words
        rows.append(ft.Text(t("rides.quote.route", pickup=place_name(app, q.pickup), dropoff=place_name(app, q.dropoff),
                              earliest=clock(q.earliest), latest=clock(q.latest)),
                            key="rides-quote-route"))
    if q.evacuation:
        rows.append(ft.Text(t("rides.quote.evacuation", fare=q.fare_yen), weight=ft.FontWeight.BOLD, key="rides-quote-evacuation"))
    if q.simulated:
        rows.append(ft.Text(t("rides.notice.simulated"), theme_style=ft.TextThemeStyle.BODY_SMALL))
    if q.points_usable:
        rows.append(checkbox(t("rides.book.pay_points", points=q.points_usable), st.pay_points,
                             lambda e: (setattr(st, "pay_points", bool(e.control.value)), shell.render())))
    return [ft.Row([ft.Container(ft.Column(rows, spacing=6), padding=12, border=ft.Border.all(2, ft.Colors.PRIMARY),
                                 border_radius=8, expand=True)])]
