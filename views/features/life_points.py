"""Health points screens (/life/points, /life/points/earn, /life/points/spend).

Earning is written to the device ledger at once (pending, provisional points) through
``app.points``; the platform confirms or rejects it when the app's sync engine sends it. Without the
health-activity consent the screen says the points stay on this device. Coupons need the
network: the platform takes the points and signs the QR shown here.
"""
from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import flet as ft
import segno

from app.platform import PlatformError
from app.points import FEATURE, Balance, ChartPoint, ConsentNeeded, CsvImportError, Entry, PointsError, PointsLedger
from app.state import Mamori
from app.sync import FeatureState
from views.contract import Screens, screen_view
from views.widgets import clock, heading, helped, local_time, notice, radio, text_field

log = logging.getLogger(__name__)

CHART_DAYS, CHART_WEEKS = 7, 6
HISTORY_ROWS = 30


@dataclass
class PointsScreen:
    """What the points screens remember while the page is open."""

    form: dict[str, str] = field(default_factory=dict)  # typed values, kept across re-renders
    message: str | None = None
    error: bool = False
    message_route: str = ""  # a message shows only on the screen where the resident acted
    coupon: str | None = None  # the last coupon QR issued in this session
    chart_period: str = "day"  # "day" | "week"
    chart_measure: str = "steps"  # "steps" | "points"
    donate_to: str = ""  # a cause id, or "resident"


def screen(shell: Screens) -> PointsScreen:
    return shell.screen_state("points", PointsScreen)


def status_line(app: Mamori) -> str:
    """One line for the Life tab."""
    b = app.points.balance()
    text = app.t("points.tab.balance", points=b.confirmed)
    if b.pending_earned:
        text += app.t("points.tab.pending", points=b.pending_earned)
    return text if b.shared else f"{text} {app.t('points.tab.device_only')}"


def sync_now(app: Mamori) -> None:
    """今すぐ同期: the app's sync engine sends and pulls points now."""
    if app.link:
        app.link.kick(FEATURE)


def _sync_state(app: Mamori) -> FeatureState | None:
    return app.link.sync.feature_state(FEATURE) if app.link else None


def _sync_problem(app: Mamori, state: FeatureState | None) -> str | None:
    if state is None or not state.last_error:
        return None
    if state.offline:
        return app.t("points.sync.offline")
    return app.t("points.sync.failed", error=state.last_error)


def _platform_text(app: Mamori, exc: Exception) -> str:
    if isinstance(exc, PointsError):
        return app.t(exc.key)
    if isinstance(exc, PlatformError) and exc.problem_type == "urn:cityos:problem:consent-required":
        return app.t("points.sync.consent_pending")
    if isinstance(exc, PlatformError) and exc.status is None:
        return app.t("points.sync.offline")
    return app.t("points.sync.failed", error=str(exc))


# ---- actions ----------------------------------------------------------------------------------
def act(app: Mamori, shell, action: Callable[[], str], clear: tuple[str, ...] = ()) -> None:
    """Run one resident action; its message (or error) shows at the top of the screen."""
    st = screen(shell)
    try:
        _say(shell, action(), False)
        for name in clear:
            st.form.pop(name, None)
    except PointsError as err:
        _say(shell, _error_text(app, err), True)
    shell.render()


def _error_text(app: Mamori, err: PointsError) -> str:
    text = app.t(err.key)
    # A CSV problem names its line; in English every detail reads naturally.
    if isinstance(err, CsvImportError) or app.t.lang == "en":
        text += f" ({err.detail})"
    return text


def record_steps(app: Mamori, form: dict[str, str]) -> str:
    entry = app.points.record_steps(form.get("steps", ""), form.get("steps_day", ""))
    return app.t("points.done.recorded", points=entry.points)


def import_csv(app: Mamori, form: dict[str, str]) -> str:
    report = app.points.import_csv(form.get("csv") or "")
    return app.t("points.done.imported", added=report.added, unchanged=report.unchanged, too_old=report.too_old)


def record_blood_pressure(app: Mamori, form: dict[str, str]) -> str:
    entry = app.points.record_blood_pressure(form.get("bp_high", ""), form.get("bp_low", ""), form.get("bp_pulse", ""))
    return app.t("points.done.recorded", points=entry.points)


def record_checkup(app: Mamori, form: dict[str, str]) -> str:
    entry = app.points.record_checkup(form.get("checkup_day", ""))
    return app.t("points.done.recorded", points=entry.points)


def scan_event(app: Mamori, form: dict[str, str]) -> str:
    entry = app.points.scan_event(form.get("event_qr") or "")
    return app.t("points.done.event", title=entry.detail.get("title", ""), points=entry.points)


def donate(app: Mamori, st: PointsScreen) -> str:
    amount = app.points.donate(st.form.get("donate_points", ""), st.donate_to, st.form.get("donate_code") or "")
    return app.t("points.done.donated", points=amount)


def issue_coupon(app: Mamori, shell) -> None:
    """Needs the platform: runs on a thread and shows the QR when it comes back."""
    st = screen(shell)
    try:
        amount = app.points.coupon_amount(st.form.get("coupon_points", ""))
    except ConsentNeeded:
        _say(shell, app.t("points.coupon.login_needed"), True)
        shell.render()
        return
    except PointsError as err:
        _say(shell, _error_text(app, err), True)
        shell.render()
        return
    _say(shell, app.t("points.coupon.issuing"), False)
    shell.render()
    shell.run_in_background(_issue, app, shell, amount, shell.route)


def _issue(app: Mamori, shell, amount: int, route: str) -> None:
    st = screen(shell)
    try:
        st.coupon = app.points.issue_coupon(amount)
        _say(shell, app.t("points.coupon.issued", points=amount), False, route)
        st.form.pop("coupon_points", None)
    except PointsError as err:
        _say(shell, _error_text(app, err), True, route)
    except PlatformError as err:
        _say(shell, _platform_text(app, err), True, route)
    finally:
        shell.render()


# ---- screens ----------------------------------------------------------------------------------
def points_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return screen_view(shell, "points.title", main_screen(shell.app, shell))


def earn_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return screen_view(shell, "points.earn.title", earn_screen(shell.app, shell))


def spend_view(shell: Screens, params: dict[str, str]) -> ft.View:
    return screen_view(shell, "points.spend.title", spend_screen(shell.app, shell))


def main_screen(app: Mamori, shell) -> list[ft.Control]:
    t = app.t
    points = app.points.ledger
    balance = points.balance()
    controls: list[ft.Control] = [*_message(shell), *_balance(app, balance), *_connection(app, shell, balance)]
    controls += [
        ft.Row(
            [
                ft.Button(t("points.earn.title"), icon=ft.Icons.DIRECTIONS_WALK, on_click=lambda e: _go(shell, "/life/points/earn")),
                ft.Button(t("points.spend.title"), icon=ft.Icons.REDEEM, on_click=lambda e: _go(shell, "/life/points/spend")),
            ],
            wrap=True,
        ),
        *chart_section(app, shell, points),
        heading(t("points.history.title")),
    ]
    history = points.history(HISTORY_ROWS)
    controls += [history_row(app, e) for e in history] or [ft.Text(t("points.history.empty"))]
    return controls


def _go(shell, route: str) -> None:
    shell.navigate(route)


def _say(shell, text: str, error: bool, route: str | None = None) -> None:
    st = screen(shell)
    st.message, st.error, st.message_route = text, error, route or shell.route


def _message(shell) -> list[ft.Control]:
    st = screen(shell)
    if not st.message or st.message_route != shell.route:
        return []
    icon = ft.Icons.ERROR_OUTLINE if st.error else ft.Icons.CHECK_CIRCLE_OUTLINE
    return [notice(st.message, icon, key="points-error" if st.error else "points-message")]


def _balance(app: Mamori, b: Balance) -> list[ft.Control]:
    t = app.t
    rows: list[ft.Control] = [
        ft.Text(t(b.status_key)),
        ft.Text(t("points.balance.value", points=b.confirmed), theme_style=ft.TextThemeStyle.DISPLAY_SMALL,
                weight=ft.FontWeight.BOLD, key="points-balance"),
        ft.Text(t("points.balance.available", points=b.available)),
    ]
    if b.pending_earned:
        rows.append(ft.Text(t("points.balance.pending_earned", points=b.pending_earned), key="points-pending"))
    if b.pending_spent:
        rows.append(ft.Text(t("points.balance.pending_spent", points=b.pending_spent)))
    if b.platform_checked_at:
        rows.append(ft.Text(t("points.balance.checked", time=local_time(b.platform_checked_at)),
                            theme_style=ft.TextThemeStyle.BODY_SMALL))
    card = ft.Container(ft.Column(rows, spacing=4), padding=12, border=ft.Border.all(1, ft.Colors.OUTLINE), border_radius=8, expand=True)
    return [ft.Row([card])]


def _connection(app: Mamori, shell, b: Balance) -> list[ft.Control]:
    """Where the points are: device only, waiting for login, or synced (with the 更新 button)."""
    t, sync = app.t, _sync_state(app)
    rows: list[ft.Control] = []
    if not b.shared:
        rows.append(notice(t("points.balance.device_only"), ft.Icons.PHONE_ANDROID, key="points-device-only"))
    elif app.points.held():
        rows.append(notice(t("points.sync.consent_pending"), ft.Icons.HOURGLASS_EMPTY))
    if not (app.link and app.link.configured):
        rows.append(notice(t("points.sync.no_platform"), ft.Icons.CLOUD_OFF))
    elif not app.link.logged_in:
        rows.append(notice(t("points.sync.logged_out"), ft.Icons.CLOUD_OFF, key="points-logged-out"))
    if not b.shared or (app.link and app.link.configured and not app.link.logged_in):
        rows.append(ft.Button(t("points.account"), icon=ft.Icons.MANAGE_ACCOUNTS, on_click=lambda e: shell.navigate("/settings/account")))
    if app.link and app.link.logged_in:
        problem = _sync_problem(app, sync)
        if problem:
            rows.append(notice(problem, ft.Icons.SYNC_PROBLEM, key="points-sync-problem"))
        running = bool(sync and sync.running)
        label = t("points.sync.running") if running else t("points.sync.now")
        rows.append(ft.Button(label, icon=ft.Icons.SYNC, disabled=running, on_click=lambda e: sync_now(app)))
    return rows


def history_row(app: Mamori, e: Entry) -> ft.Control:
    t = app.t
    what = t(f"points.kind.{e.kind}") if t.has(f"points.kind.{e.kind}") else e.kind
    detail = _detail(app, e)
    status = t(f"points.status.{e.status}")
    lines: list[ft.Control] = [
        ft.Text(f"{e.day.isoformat()}  {what}{detail}", weight=ft.FontWeight.BOLD),
        ft.Text(t("points.history.line", points=f"{e.points:+d}", status=status)),
    ]
    if e.reason_key:
        lines.append(ft.Text(t(e.reason_key), color=ft.Colors.ERROR))
    return ft.Container(ft.Column(lines, spacing=2), padding=ft.Padding.symmetric(vertical=4), key=f"entry-{e.seq}")


def _detail(app: Mamori, e: Entry) -> str:
    t, d = app.t, e.detail
    if e.kind == "steps" and "quantity" in d:
        return " " + t("points.history.steps", n=f"{d['quantity']:,}")
    if d.get("title"):
        return f" {d['title']}"
    return ""


# ---- chart ------------------------------------------------------------------------------------
def chart_points(app: Mamori, shell, points: PointsLedger) -> list[ChartPoint]:
    st, today = screen(shell), points.today()
    if st.chart_period == "week":
        return points.weekly_chart(today - timedelta(weeks=CHART_WEEKS - 1), today)[-CHART_WEEKS:]
    return points.daily_chart(today - timedelta(days=CHART_DAYS - 1), today)


def chart_section(app: Mamori, shell, points: PointsLedger) -> list[ft.Control]:
    import flet_charts as fch  # here, not at import: a tenth of a second off every app start

    t, st = app.t, screen(shell)
    data = chart_points(app, shell, points)
    values = [p.steps if st.chart_measure == "steps" else p.points for p in data]
    labels = [f"{p.start.month}/{p.start.day}" for p in data]
    unit = "points.chart.steps_value" if st.chart_measure == "steps" else "points.chart.points_value"

    def choose(**change: str) -> None:
        for name, value in change.items():
            setattr(st, name, value)
        shell.render()

    chips = ft.Row(
        [
            ft.Chip(label=ft.Text(t("points.chart.day")), selected=st.chart_period == "day", on_select=lambda e: choose(chart_period="day")),
            ft.Chip(label=ft.Text(t("points.chart.week")), selected=st.chart_period == "week", on_select=lambda e: choose(chart_period="week")),
            ft.Chip(label=ft.Text(t("points.kind.steps")), selected=st.chart_measure == "steps", on_select=lambda e: choose(chart_measure="steps")),
            ft.Chip(label=ft.Text(t("points.chart.points")), selected=st.chart_measure == "points",
                    on_select=lambda e: choose(chart_measure="points")),
        ],
        wrap=True,
    )
    top = max(values, default=0) or 10
    grid = _grid(top)
    chart = fch.BarChart(
        groups=[
            fch.BarChartGroup(x=i, rods=[fch.BarChartRod(to_y=v, width=18, color=ft.Colors.PRIMARY, border_radius=3, tooltip=str(v))])
            for i, v in enumerate(values)
        ],
        bottom_axis=fch.ChartAxis(labels=[fch.ChartAxisLabel(value=i, label=ft.Text(lbl, size=11)) for i, lbl in enumerate(labels)], label_size=28),
        left_axis=fch.ChartAxis(label_size=44),
        horizontal_grid_lines=fch.ChartGridLines(interval=grid, color=ft.Colors.OUTLINE_VARIANT, width=1),
        max_y=grid * math.ceil(top * 1.05 / grid),
        interactive=True,
        height=200,
    )
    # The values as text too: a screen reader reads them, and they stay legible in large-text mode.
    readout = ft.Text(" · ".join(f"{lbl} {t(unit, n=f'{v:,}')}" for lbl, v in zip(labels, values, strict=True)),
                      theme_style=ft.TextThemeStyle.BODY_SMALL, key="points-chart-values")
    title = t("points.chart.title_week" if st.chart_period == "week" else "points.chart.title_day")
    return [heading(title), chips, ft.Semantics(label=readout.value, container=True, content=chart, key="points-chart"), readout]


def _grid(top: int) -> float:
    step = 10 ** max(0, len(str(top)) - 1)
    return step if top / step >= 3 else step / 2 if step >= 2 else 1


# ---- earn -------------------------------------------------------------------------------------
def _field(st: PointsScreen, name: str, label: str, **kwargs) -> ft.TextField:
    def keep(e) -> None:
        st.form[name] = e.control.value

    return text_field(label=label, value=st.form.get(name, ""), on_change=keep, **kwargs)


def earn_screen(app: Mamori, shell) -> list[ft.Control]:
    t, st = app.t, screen(shell)
    today = app.points.ledger.today().isoformat()
    number = ft.KeyboardType.NUMBER

    def run(action: Callable[[Mamori, dict[str, str]], str], *names: str) -> Callable:
        return lambda e: act(app, shell, lambda: action(app, st.form), names)

    return [
        *_message(shell),
        notice(t("points.earn.intro"), ft.Icons.INFO_OUTLINE),
        heading(t("points.kind.steps")),
        _field(st, "steps", t("points.earn.steps"), keyboard_type=number),
        _field(st, "steps_day", t("points.earn.day"), hint_text=today, **helped(t("points.earn.day_help", today=today))),
        ft.Button(t("points.earn.record_steps"), icon=ft.Icons.DIRECTIONS_WALK, on_click=run(record_steps, "steps", "steps_day")),
        ft.Text(t("points.earn.csv_help")),
        _field(st, "csv", t("points.earn.csv"), multiline=True, min_lines=3, max_lines=8),
        ft.Button(t("points.earn.import_csv"), icon=ft.Icons.UPLOAD_FILE, on_click=run(import_csv, "csv")),
        heading(t("points.kind.blood_pressure")),
        ft.Row(
            [
                _field(st, "bp_high", t("points.earn.bp_high"), keyboard_type=number, expand=True),
                _field(st, "bp_low", t("points.earn.bp_low"), keyboard_type=number, expand=True),
            ]
        ),
        _field(st, "bp_pulse", t("points.earn.bp_pulse"), keyboard_type=number),
        ft.Button(t("points.earn.record_bp"), icon=ft.Icons.MONITOR_HEART, on_click=run(record_blood_pressure, "bp_high", "bp_low", "bp_pulse")),
        heading(t("points.kind.checkup")),
        _field(st, "checkup_day", t("points.earn.day"), hint_text=today, **helped(t("points.earn.day_help", today=today))),
        ft.Button(t("points.earn.record_checkup"), icon=ft.Icons.MEDICAL_SERVICES, on_click=run(record_checkup, "checkup_day")),
        heading(t("points.earn.event_title")),
        ft.Text(t("points.earn.event_help")),
        _field(st, "event_qr", t("points.earn.event_qr"), multiline=True, max_lines=4),
        ft.Button(t("points.earn.scan_event"), icon=ft.Icons.QR_CODE_SCANNER, on_click=run(scan_event, "event_qr")),
    ]


# ---- spend ------------------------------------------------------------------------------------
def spend_screen(app: Mamori, shell) -> list[ft.Control]:
    t, st = app.t, screen(shell)
    points = app.points.ledger
    b = points.balance()
    number = ft.KeyboardType.NUMBER
    controls: list[ft.Control] = [*_message(shell), ft.Text(t("points.balance.available", points=b.available), key="points-available")]
    if not b.shared:
        controls += [notice(t("points.error.consent_needed"), ft.Icons.LOCK_OUTLINE),
                     ft.Button(t("points.account"), icon=ft.Icons.MANAGE_ACCOUNTS, on_click=lambda e: shell.navigate("/settings/account"))]
    controls += [heading(t("points.coupon.title")), ft.Text(t("points.coupon.help"))]
    if st.coupon:
        controls += coupon_card(app, st.coupon)
    controls += [
        _field(st, "coupon_points", t("points.coupon.amount"), keyboard_type=number),
        ft.Button(t("points.coupon.issue"), icon=ft.Icons.QR_CODE_2, on_click=lambda e: issue_coupon(app, shell)),
        heading(t("points.donate.title")),
        ft.Text(t("points.donate.help")),
        _field(st, "donate_points", t("points.donate.amount"), keyboard_type=number),
        ft.RadioGroup(
            value=st.donate_to or None,
            on_change=lambda e: (setattr(st, "donate_to", e.control.value or ""), shell.render()),
            content=ft.Column([*(radio(c.id, _cause_name(app, c)) for c in (points.rules().causes if points.rules() else ())),
                               radio("resident", t("points.donate.resident"))]),
        ),
    ]
    if not points.rules():
        controls.append(ft.Text(t("points.donate.causes_after_sync")))
    if st.donate_to == "resident":
        controls.append(_field(st, "donate_code", t("points.donate.code")))
    controls.append(ft.Button(t("points.donate.send"), icon=ft.Icons.VOLUNTEER_ACTIVISM,
                              on_click=lambda e: act(app, shell, lambda: donate(app, st), ("donate_points", "donate_code"))))
    my_code = app.points.my_code() if app.link and app.link.logged_in else None
    if my_code:
        controls += [ft.Text(t("points.donate.my_code")), ft.Text(my_code, selectable=True, key="points-my-code")]
    controls.append(ft.Text(t("points.spend.ride_fare_help")))
    return controls


def _cause_name(app: Mamori, cause) -> str:
    return cause.name_en if app.t.lang == "en" else cause.name_ja


def coupon_card(app: Mamori, text: str) -> list[ft.Control]:
    """The coupon as a QR for the shop's reader, with its amount and expiry in words."""
    t = app.t
    coupon = app.points.coupon(text)
    label = t("points.coupon.qr_label", points=coupon.points if coupon else "?")
    lines: list[ft.Control] = [
        ft.Image(src=qr_png(text), semantics_label=label, width=240, height=240, key="points-coupon-qr"),
        ft.Text(label, weight=ft.FontWeight.BOLD),
    ]
    if coupon:
        expires = clock(datetime.fromtimestamp(coupon.expires_at, UTC), "%Y-%m-%d %H:%M")
        lines.append(ft.Text(t("points.coupon.expires", time=expires)))
    lines.append(ft.Text(t("points.coupon.once")))
    return [ft.Container(ft.Column(lines, horizontal_alignment=ft.CrossAxisAlignment.CENTER), padding=12,
                         border=ft.Border.all(2, ft.Colors.PRIMARY), border_radius=8, bgcolor=ft.Colors.WHITE)]


def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=3)
    return buffer.getvalue()
