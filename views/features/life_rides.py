"""On-demand ride screens (/life/rides, /life/rides/book).

The booking form is one column of large choices in numbered steps (from, to, when, who),
then a quote and a confirm. A booking is saved on the phone first; until the platform answers
it is shown as "not yet sent", never as confirmed. While /life/rides is open a background loop
sends what waits and polls the status every few seconds; it ends when the route changes.
Network calls run on threads, each with its own SQLite connection.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import flet as ft

from app.devicekeys import get_or_create
from app.platform import PlatformError
from app.points import PointsError
from app.rides import (
    MAX_PARTY,
    Booking,
    Place,
    PlaceKind,
    Quote,
    RideBook,
    RideError,
    RideRequest,
    RidesApi,
    RideStatus,
)
from app.state import Mamori
from geo.models import LatLon
from offline.store import open_store
from protocol.hazards import ShelterKind
from views.features import life_points
from views.widgets import heading, notice

log = logging.getLogger(__name__)

KEY_NAME = "rides.at_rest"  # the device key that seals bookings (places, who rides)
POLL_S = 3.0
API_TIMEOUT_S = 20.0  # the platform builds a municipality's ride service on first use (seconds)
STOP_CHOICES = 6


class FormProblem(ValueError):
    """Something missing or mistyped in the booking form; ``key`` is the message to show."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class RidesScreen:
    """The booking form and the screen's messages, kept while the page is open."""

    pickup: str = ""  # "home" | "current" | "stop"
    dropoff: str = ""  # "stop" | "shelter" | "home" | "point"
    pickup_stop: str = ""  # chosen shelter id
    dropoff_stop: str = ""
    when: str = "now"  # "now" | "later"
    behalf: bool = False
    pay_points: bool = False
    form: dict[str, str] = field(default_factory=dict)  # typed values: searches, times, party, on-behalf id
    quote: Quote | None = None
    message: str | None = None
    error: bool = False
    message_route: str = ""
    busy: bool = False
    polling: bool = False
    seen: tuple = ()  # what the list showed last, so polling re-renders only on a change
    pay_with_points: dict[str, int] = field(default_factory=dict)  # booking id → points, paid when done


def screen(shell) -> RidesScreen:
    return shell.state("life").setdefault("rides", RidesScreen())


def ride_book(app: Mamori, db=None, *, online: bool = False) -> RideBook:
    """The ride book over ``db``; with ``online`` it talks to the platform (when logged in)."""
    db = db if db is not None else app.db
    api = RidesApi(app.link.http, timeout=API_TIMEOUT_S) if online and _logged_in(app) else None
    return RideBook(db, get_or_create(app.keys, KEY_NAME), api,
                    points_balance=lambda: life_points.ledger(app, db).balance().available)


def _logged_in(app: Mamori) -> bool:
    return bool(app.link and app.link.logged_in)


def status_line(app: Mamori) -> str:
    """One line for the Life tab: the next ride, else that there is none."""
    active = [b for b in ride_book(app).history(20) if not b.status.final]
    if not active:
        return app.t("rides.tab.none")
    b = active[0]
    return app.t("rides.tab.next", status=app.t(b.status_key), to=place_name(app, b.dropoff or b.request.dropoff))


# ---- background work ----------------------------------------------------------------------------
def _online(app: Mamori, shell, work: Callable[[RideBook], Any], route: str) -> None:
    """Run ``work`` with an online ride book on this thread's own connection; show its outcome."""
    st = screen(shell)
    path = life_points._store_path(app)
    db = open_store(path) if path else app.db
    book = ride_book(app, db, online=True)
    try:
        text = work(book)
        if text:
            _say(shell, text, False, route)
    except RideError as err:
        _say(shell, _ride_error(app, err), True, route)
    except PlatformError as err:
        log.warning("rides: platform error %s", type(err).__name__)
        _say(shell, app.t("rides.error.platform"), True, route)
    finally:
        if path:
            db.conn.close()
        st.busy = False
        shell.render()


def start_polling(app: Mamori, shell) -> None:
    st = screen(shell)
    if st.polling or not _logged_in(app):
        return
    st.polling = True
    shell.page.run_thread(_poll, app, shell)


def _poll(app: Mamori, shell) -> None:
    st = screen(shell)
    path = life_points._store_path(app)
    db = open_store(path) if path else app.db
    book = ride_book(app, db, online=True)
    try:
        if book.api is not None:
            _warm_up(book.api)
        while (shell.page.route or "").startswith("/life/rides") and book.api is not None:
            refresh(app, shell, book, db)
            time.sleep(POLL_S)
    finally:
        if path:
            db.conn.close()
        st.polling = False


def _warm_up(api: RidesApi) -> None:
    """Ask for the service once, so its first use is not the resident's quote."""
    try:
        api.service()
    except (RideError, PlatformError) as err:
        log.info("rides service not available yet: %s", type(err).__name__)


def refresh(app: Mamori, shell, book: RideBook, db=None) -> bool:
    """Send what waits, poll the platform, pay fares chosen for points; render on a change."""
    st = screen(shell)
    try:
        book.send_pending()
        book.refresh()
    except (RideError, PlatformError) as err:
        log.info("rides refresh: %s", type(err).__name__)
    history = book.history(50)
    _pay_fares(app, st, history, db)
    seen = tuple((b.id, b.status, b.version, b.cancel_pending) for b in history)
    if seen == st.seen:
        return False
    st.seen = seen
    if shell.page.route == "/life/rides":  # never redraw the form under the resident's fingers
        shell.render()
    return True


def _pay_fares(app: Mamori, st: RidesScreen, history: list[Booking], db) -> None:
    """A fare chosen for points is paid once the ride is done (idempotent per ride)."""
    for b in history:
        points = st.pay_with_points.get(b.id)
        if points and b.status is RideStatus.DONE:
            try:
                life_points.ledger(app, db).pay_ride_fare(b.id, points)
                del st.pay_with_points[b.id]
            except PointsError as err:
                log.info("ride fare by points refused: %s", err.key)


# ---- actions ------------------------------------------------------------------------------------
def _say(shell, text: str, error: bool, route: str | None = None) -> None:
    st = screen(shell)
    st.message, st.error, st.message_route = text, error, route or shell.page.route


def _ride_error(app: Mamori, err: RideError) -> str:
    text = app.t(err.message_key)
    return f"{text} ({err.detail})" if app.t.lang == "en" and err.detail else text


def _background(app: Mamori, shell, work: Callable[[RideBook], Any]) -> None:
    st = screen(shell)
    if st.busy:
        return
    st.busy = True
    shell.render()
    shell.page.run_thread(_online, app, shell, work, shell.page.route)


def ask_quote(app: Mamori, shell) -> None:
    st = screen(shell)
    try:
        request = build_request(app, st)
    except FormProblem as err:
        _say(shell, app.t(err.key), True)
        shell.render()
        return

    def work(book: RideBook) -> str:
        st.quote = None
        st.quote = book.quote(request)
        st.message = None
        return ""

    _say(shell, app.t("rides.quote.asking"), False)
    _background(app, shell, work)


def confirm(app: Mamori, shell) -> None:
    st = screen(shell)
    try:
        request = build_request(app, st)
        request.check(datetime.now().astimezone())
    except FormProblem as err:
        _say(shell, app.t(err.key), True)
        shell.render()
        return
    except RideError as err:
        _say(shell, _ride_error(app, err), True)
        shell.render()
        return
    fare_points = st.quote.points_usable if (st.pay_points and st.quote) else 0

    def work(book: RideBook) -> str:
        booking = book.book(request)
        if fare_points:
            st.pay_with_points[booking.id] = fare_points
        _say(shell, booked_text(app, booking), booking.status is RideStatus.REJECTED, "/life/rides")
        return ""

    # The list shows the booking as it goes: "not yet sent" until the platform answers.
    st.quote = None
    _say(shell, app.t("rides.book.sending"), False, "/life/rides")
    st.busy = True
    shell.page.run_thread(_online, app, shell, work, "/life/rides")
    shell.replace("/life/rides")  # Back from the ride's status never reopens the finished form


def booked_text(app: Mamori, booking: Booking) -> str:
    if booking.status is RideStatus.NOT_SENT:
        return app.t("rides.notice.not_sent")
    if booking.status is RideStatus.REJECTED:
        return f"{app.t(booking.status_key)}: {app.t(booking.reason_key or 'rides.error.platform')}"
    return app.t("rides.done.booked")


def cancel(app: Mamori, shell, booking_id: str) -> None:
    def work(book: RideBook) -> str:
        after = book.cancel(booking_id)
        return app.t("rides.notice.cancel_pending") if after.cancel_pending else app.t("rides.done.cancelled")

    _background(app, shell, work)


def rebook(app: Mamori, shell, booking_id: str) -> None:
    def work(book: RideBook) -> str:
        return booked_text(app, book.rebook(booking_id))

    _background(app, shell, work)


# ---- the request from the form --------------------------------------------------------------------
def build_request(app: Mamori, st: RidesScreen, now: datetime | None = None) -> RideRequest:
    """The RideRequest the form describes; FormProblem names what is missing."""
    pickup = _place(app, st.pickup, st.pickup_stop, "pickup")
    dropoff = _place(app, st.dropoff, st.dropoff_stop, "dropoff")
    passengers = _count(st.form.get("passengers"), 1)
    companions = _count(st.form.get("companions"), 0)
    wheelchairs = _count(st.form.get("wheelchairs"), 0)
    earliest = latest = None
    if st.when == "later":
        earliest, latest = _window(st.form, now or datetime.now().astimezone())
    behalf = (st.form.get("behalf_id") or "").strip() if st.behalf else None
    if st.behalf and not behalf:
        raise FormProblem("rides.form.behalf_missing")
    return RideRequest(pickup, dropoff, passengers, companions, wheelchairs, earliest, latest, on_behalf_of=behalf)


def _place(app: Mamori, kind: str, stop_id: str, which: str) -> Place:
    t = app.t
    if kind == "home" and app.prefs.home:
        return Place(PlaceKind.HOME, app.prefs.home.lat, app.prefs.home.lon, t("rides.place.home"))
    if kind == "current" and app.position:
        return Place(PlaceKind.CURRENT, app.position.lat, app.position.lon, t("rides.place.current"))
    if kind == "point" and app.picked_point:
        return Place(PlaceKind.POINT, app.picked_point.lat, app.picked_point.lon, t("rides.place.point"))
    if kind in ("stop", "shelter") and stop_id:
        shelter = app.shelters.get(ShelterKind.DESIGNATED_SHELTER, stop_id) or app.shelters.get(ShelterKind.EMERGENCY_SITE, stop_id)
        if shelter:
            return Place(PlaceKind(kind), shelter.lat, shelter.lon, shelter.name, shelter.id)
    raise FormProblem(f"rides.form.choose_{which}")


def _count(text: str | None, default: int) -> int:
    cleaned = (text or "").strip()
    if not cleaned:
        return default
    if not cleaned.isdigit() or int(cleaned) > MAX_PARTY:
        raise FormProblem("rides.error.invalid_party")
    return int(cleaned)


def _window(form: dict[str, str], now: datetime) -> tuple[datetime, datetime]:
    try:
        day = date.fromisoformat((form.get("day") or now.date().isoformat()).strip().replace("/", "-"))
        start = datetime.combine(day, datetime.strptime((form.get("start") or "").strip(), "%H:%M").time(), now.tzinfo)
        end_text = (form.get("end") or "").strip()
        end = datetime.combine(day, datetime.strptime(end_text, "%H:%M").time(), now.tzinfo) if end_text else start + timedelta(minutes=30)
    except ValueError:
        raise FormProblem("rides.form.bad_time") from None
    return start, end


def place_name(app: Mamori, place: Place) -> str:
    return place.name or app.t(f"rides.place.{place.kind.value}")


# ---- screens --------------------------------------------------------------------------------------
def view(app: Mamori, shell, sub: list[str]) -> ft.View | None:
    t = app.t
    if sub == []:
        start_polling(app, shell)
        title, controls = t("rides.title"), main_screen(app, shell)
    elif sub == ["book"]:
        title, controls = t("rides.book.title"), book_screen(app, shell)
    else:
        return None
    route = "/life/rides" + "".join(f"/{p}" for p in sub)
    return ft.View(route=route, appbar=ft.AppBar(title=ft.Text(title)), controls=controls, scroll=ft.ScrollMode.AUTO)


def _message(shell) -> list[ft.Control]:
    st = screen(shell)
    if not st.message or st.message_route != shell.page.route:
        return []
    icon = ft.Icons.ERROR_OUTLINE if st.error else ft.Icons.INFO_OUTLINE
    return [notice(st.message, icon, key="rides-error" if st.error else "rides-message")]


def _big(text: str, icon: str, on_click, *, disabled: bool = False) -> ft.Button:
    """A large button for the main steps (elderly residents first)."""
    return ft.Button(content=ft.Text(text, size=18), icon=icon, on_click=on_click, disabled=disabled,
                     style=ft.ButtonStyle(padding=ft.Padding.symmetric(horizontal=20, vertical=14)))


def main_screen(app: Mamori, shell) -> list[ft.Control]:
    t, st = app.t, screen(shell)
    controls: list[ft.Control] = [notice(t("rides.notice.simulated"), ft.Icons.SMART_TOY_OUTLINED, key="rides-simulated"), *_message(shell)]
    if not (app.link and app.link.configured):
        controls.append(notice(t("rides.offline.no_platform"), ft.Icons.CLOUD_OFF))
    elif not app.link.logged_in:
        controls += [notice(t("rides.offline.logged_out"), ft.Icons.CLOUD_OFF, key="rides-logged-out"),
                     ft.Button(t("points.account"), icon=ft.Icons.MANAGE_ACCOUNTS, on_click=lambda e: shell.navigate("/settings/account"))]
    controls.append(ft.Row([_big(t("rides.book.title"), ft.Icons.ADD, lambda e: shell.navigate("/life/rides/book")),
                            ft.Button(t("rides.refresh"), icon=ft.Icons.REFRESH, disabled=st.busy,
                                      on_click=lambda e: _background(app, shell, lambda book: (refresh(app, shell, book), "")[1]))],
                           wrap=True))
    history = ride_book(app).history(30)
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
    start = b.request.earliest.astimezone().strftime("%m/%d %H:%M") if b.request.earliest else ""
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
        arrival = b.arrival.astimezone().strftime("%H:%M") if b.arrival else "—"
        lines.append(ft.Text(t("rides.card.eta", pickup=b.pickup_eta.astimezone().strftime("%H:%M"), arrival=arrival)))
    if b.vehicle_id and not b.status.final:
        lines.append(ft.Text(t("rides.card.vehicle", vehicle=b.vehicle_id)))
    if b.fare_yen is not None:
        lines.append(ft.Text(t("rides.card.fare", fare=b.fare_yen)))
    if b.id in st.pay_with_points:
        lines.append(ft.Text(t("rides.card.points_on_done", points=st.pay_with_points[b.id])))
    if b.reason_key and b.status in (RideStatus.CANCELLED, RideStatus.REJECTED):
        lines.append(ft.Text(t(b.reason_key)))
    actions: list[ft.Control] = []
    if not b.status.final and b.status is not RideStatus.ON_BOARD and not b.cancel_pending:
        actions.append(ft.Button(t("rides.action.cancel"), icon=ft.Icons.CANCEL_OUTLINED, disabled=st.busy,
                                 on_click=lambda e: cancel(app, shell, b.id)))
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
        st.form[name] = e.control.value

    return ft.TextField(label=label, value=st.form.get(name, ""), on_change=keep, text_size=18, **kwargs)


def _choices(value: str, options: list[tuple[str, str]], on_change: Callable[[str], None]) -> ft.RadioGroup:
    return ft.RadioGroup(
        value=value or None,
        on_change=lambda e: on_change(e.control.value or ""),
        content=ft.Column([ft.Radio(value=v, label=label) for v, label in options], spacing=0),
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
        controls += [_field(st, "day", t("rides.book.day")), ft.Row([_field(st, "start", t("rides.book.start"), expand=True),
                                                                    _field(st, "end", t("rides.book.end"), expand=True)])]
    number = ft.KeyboardType.NUMBER
    controls += [
        _step(t("rides.book.step_who")),
        _field(st, "passengers", t("rides.book.passengers"), keyboard_type=number, hint_text="1"),
        _field(st, "companions", t("rides.book.companions"), keyboard_type=number, hint_text="0"),
        _field(st, "wheelchairs", t("rides.book.wheelchairs"), keyboard_type=number, hint_text="0"),
        ft.Checkbox(label=t("rides.book.behalf"), value=st.behalf, on_change=lambda e: set_(behalf=bool(e.control.value))),
    ]
    if st.behalf:
        controls += [_field(st, "behalf_id", t("rides.book.behalf_id")),
                     ft.Text(t("rides.book.behalf_help"), theme_style=ft.TextThemeStyle.BODY_SMALL)]
    controls += [_step(t("rides.book.step_confirm")), *_message(shell)]
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
    query = st.form.get(f"{which}_query", "")
    kind = ShelterKind.DESIGNATED_SHELTER if which == "dropoff" and st.dropoff == "shelter" else None
    origin = app.position or app.prefs.home or _centre(app)
    hits = app.shelters.search(query, kind=kind, origin=origin)[:STOP_CHOICES * 2] if query.strip() else \
        [h for h in app.shelters.nearest(origin, STOP_CHOICES * 3) if kind is None or h.shelter.kind is kind]
    chosen = getattr(st, f"{which}_stop")

    def search(e) -> None:
        st.form[f"{which}_query"] = e.control.value

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
        ft.Row([ft.TextField(label=t(f"rides.book.search_{which}"), value=query, on_change=search, on_submit=lambda e: shell.render(),
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
    summary = t("rides.quote.summary", pickup=q.pickup_eta.astimezone().strftime("%H:%M"),
                arrival=q.arrival.astimezone().strftime("%H:%M"), fare=q.fare_yen, points=q.points_usable)
    rows: list[ft.Control] = [ft.Text(summary, size=18, weight=ft.FontWeight.BOLD, key="rides-quote")]
    if q.pickup is not None and q.earliest is not None and q.latest is not None:  # what is being booked, in words
        rows.append(ft.Text(t("rides.quote.route", pickup=place_name(app, q.pickup), dropoff=place_name(app, q.dropoff),
                              earliest=q.earliest.astimezone().strftime("%H:%M"), latest=q.latest.astimezone().strftime("%H:%M")),
                            key="rides-quote-route"))
    if q.evacuation:
        rows.append(ft.Text(t("rides.quote.evacuation", fare=q.fare_yen), weight=ft.FontWeight.BOLD, key="rides-quote-evacuation"))
    if q.simulated:
        rows.append(ft.Text(t("rides.notice.simulated"), theme_style=ft.TextThemeStyle.BODY_SMALL))
    if q.points_usable:
        rows.append(ft.Checkbox(label=t("rides.book.pay_points", points=q.points_usable), value=st.pay_points,
                                on_change=lambda e: (setattr(st, "pay_points", bool(e.control.value)), shell.render())))
    return [ft.Row([ft.Container(ft.Column(rows, spacing=6), padding=12, border=ft.Border.all(2, ft.Colors.PRIMARY),
                                 border_radius=8, expand=True)])]
