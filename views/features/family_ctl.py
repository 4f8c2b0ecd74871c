"""What the family screens do when tapped: glue between the shell and ``app.family``.

One ``FamilyCtl`` per open page (the family screens' state). Network work runs in
``shell.run_in_background`` and ends with ``shell.render()``; the book, answering, sharing and
where alerts apply are ``app.family`` (the family service); everything a resident records
is written to the local store first, so the tab works with no platform and no login.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.consent import DataCategory
from app.family import FEATURE as FAMILY_FEATURE
from app.family import (
    STAFF_ROLE,
    Alert,
    AlertDesk,
    Banner,
    FamilyBook,
    FamilyError,
    FamilySync,
    HqPerson,
    HqSnapshot,
    Place,
    Relation,
    SafetyStatus,
    SupportRegister,
    SupportRegistration,
    alerts_for,
    area_polygon,
    parse_invite,
    read_alerts,
    support_entity,
)
from app.identity import Identity
from app.platform import PlatformError
from app.state import Mamori
from app.sync import ALERTS, SHELTER_STATUS, FeatureState
from geo.models import LatLon
from views.contract import Screens
from views.features.qr_reader import Scanner

log = logging.getLogger(__name__)  # error kinds only: never names, answers or tokens

SHOWN_ON = ("/home", "/family")  # the screens ("/" is Home) that show what this controller watches
WATCHED = (FAMILY_FEATURE, ALERTS.name, SHELTER_STATUS.name)  # the sync features whose runs it shows
ALERT_FORM = {"hazard": "flood", "level": 3, "headline": "", "minutes": 60, "areas": ()}


class FamilyCtl:
    def __init__(self, app: Mamori, shell: Screens) -> None:
        self.app, self.shell = app, shell
        self.identity: Identity | None = None
        self.message: str | None = None  # one line at the top: saved / why something failed
        self.note = ""  # the optional short message typed with an answer
        self.group_name = ""  # typed in "new group"
        self.join_code = ""  # pasted invite text
        self.with_location = False
        self.share_open = False  # "share as text" panel shown
        self.invite: tuple[str, str] | None = None  # (group id, invite text) being shown
        self.confirm: tuple[str, str, str] | None = None  # ("leave"|"remove", group, person)
        self.share_confirm: tuple[str, str, bool] | None = None  # a sharing switch waiting for "yes"
        self.support_needs: set[str] = set()  # the 要支援者 form (kept here: a redraw must not wipe it)
        self.support_address = ""
        self.support_caregiver: str | None = None
        self.support_confirm: str | None = None  # "register" | "withdraw", waiting for "yes"
        self.export_path: str | None = None
        self.invite_scan = Scanner()  # an invite QR read by camera or picture
        self.hq: HqSnapshot | None = None
        self.hq_people: list[HqPerson] = []
        self.hq_query = ""
        self.hq_found: list[HqPerson] | None = None  # search results (None: no search)
        self.hq_loaded_at: datetime | None = None
        self.alert_form: dict[str, object] = {**ALERT_FORM}
        self.busy = False
        self._opened = False
        self._lock = threading.RLock()  # app.db is shared with the page's threads
        self._unsubscribe: Callable[[], None] | None = None
        self._banner_ids: tuple[str, ...] = ()
        self._shelter_sig: object = None
        self._answers: tuple[object, ...] | None = None  # the family's answers, as last drawn
        self._hq_ran: float | None = None  # the family feature's run the HQ snapshot was reloaded after
        self._runs: tuple[float | None, ...] = ()  # the watched features' last successes, as last looked at

    # ---- who am I ---------------------------------------------------------------------------
    @property
    def logged_in(self) -> bool:
        return self.app.family.logged_in

    def me(self) -> str:
        if self.logged_in and self.identity is None:
            self.identity = self.app.link.identity
        return self.app.family.me()

    def is_staff(self) -> bool:
        return self.logged_in and self.identity is not None and self.identity.has_role(STAFF_ROLE)

    def _fetch_identity(self) -> Identity:
        self.identity = self.app.link.session.identity()
        return self.identity

    def forget_account(self) -> None:
        """Logged out: the next login may be someone else, so nothing of this account is used
        (the session dropped its stored identity with the tokens)."""
        self.identity, self.invite, self.hq = None, None, None

    # ---- the book ---------------------------------------------------------------------------
    def book(self) -> FamilyBook:
        return self.app.family.book()

    def consented(self, category: DataCategory) -> bool:
        return self.app.family.consented(category)

    def _family(self) -> FamilySync:
        return self.app.family.groups()

    # ---- answering --------------------------------------------------------------------------
    def answer(self, status: SafetyStatus, person: str | None = None) -> None:
        t = self.app.t
        try:
            with self._lock:
                who, located = self.app.family.answer(status, message=self.note, with_location=self.with_location,
                                                      person=person)
        except FamilyError as exc:
            self.message = t(exc.key)
            self.shell.render()
            return
        self.note = ""
        self.message = (t("family.saved_to", status=t(status.label_key), who="・".join(t(f"family.recipient.{r}") for r in who))
                        if who else t("family.saved_local", status=t(status.label_key)))
        if self.with_location and person is None and not located:
            self.message += " " + t("family.no_position")
        self.shell.render()
        if self.logged_in:
            self.refresh()

    def recipients(self, proxy: bool = False) -> list[str]:
        return self.app.family.recipients(proxy)

    def locate(self) -> None:
        self.shell.run_async(self._locate)

    async def _locate(self) -> None:
        try:
            position = await self.shell.geolocator.get_current_position()
            self.app.position = LatLon(position.latitude, position.longitude)
        except Exception as exc:
            log.info("position unavailable: %s", type(exc).__name__)
            self.message = self.app.t("family.no_position")
        self.shell.render()

    # ---- talking to the platform --------------------------------------------------------------
    def opened(self) -> None:
        """The tab was shown: sync once per page visit when an account is there."""
        self.watch_alerts()
        if not self._opened and self.logged_in:
            self._opened = True
            self.refresh()

    def refresh(self) -> None:
        """最新にする: the sync engine sends and fetches everything now; the screen redraws
        when the family's answers arrive."""
        self.app.link.kick()

    def create_group(self, name: str) -> None:
        name = name.strip()
        if not name:
            self.message = self.app.t("family.group_name_needed")
            self.shell.render()
            return
        self.group_name = ""
        self._background(lambda: self._with_family(lambda f: f.create_group(name[:60])) and "family.group_created")

    def make_invite(self, group_id: str) -> None:
        self.invite = (group_id, self._family().invite(group_id, self.identity.name if self.identity else ""))
        self.shell.render()

    def join(self, text: str) -> None:
        self.join_code = ""
        try:
            parse_invite(text)  # damaged or not an invite: say so now, even offline
        except FamilyError as exc:
            self.message = self.app.t(exc.key)
            self.shell.render()
            return
        self._background(lambda: self._with_family(lambda f: f.join(text.strip())) and "family.joined")

    def leave(self, group_id: str) -> None:
        self.confirm = None
        self._background(lambda: self._with_family(lambda f: (f.client.leave(group_id), f.pull())) and "family.left")

    def remove(self, group_id: str, person: str) -> None:
        self.confirm = None
        self._background(lambda: self._with_family(lambda f: (f.client.remove(group_id, person), f.pull())) and "family.removed")

    def name_caregiver(self, person: str, relation: Relation) -> None:
        """I (who need support) let ``person`` answer for me; needs my caregiver-sharing consent."""
        self._background(lambda: self._with_family(
            lambda f: (f.client.name_caregiver(person, relation), f.pull())) and "family.caregiver_named")

    def open_proxy(self, person: str) -> None:
        """The proxy screen starts without the last screen's message."""
        self.message = None
        self.shell.navigate(f"/family/proxy/{person}")

    def resolve_sos(self, person: str) -> None:
        self._background(lambda: self._with_family(
            lambda f: (f.client.resolve_sos(person), f.pull())) and "family.sos.resolved")

    def drop_caregiver(self, person: str) -> None:
        self._background(lambda: self._with_family(lambda f: (f.client.drop_caregiver(person), f.pull())) and "family.caregiver_dropped")

    def _with_family(self, action: Callable[[FamilySync], object]) -> bool:
        if self.identity is None:
            self._fetch_identity()
        action(self._family())
        return True

    def _background(self, work: Callable[[], str | None]) -> None:
        """Run network work off the UI thread; say its outcome (or why it failed) in a snack bar:
        group, sharing and HQ buttons sit far below the top of the screen."""
        t = self.app.t

        def run() -> None:
            self.busy = True
            key: str | None = None
            try:
                with self._lock:
                    key = work()
            except FamilyError as exc:
                key = exc.key
            except PlatformError as exc:
                log.warning("family sync failed: %s", type(exc).__name__)
                key = "family.offline"
            finally:
                self.busy = False
            self.shell.render()
            if key:
                self.shell.tell(t(key))

        self.shell.run_in_background(run)

    # ---- sharing with family / caregivers -----------------------------------------------------
    def sharing(self) -> dict[str, bool]:
        return self.app.family.sharing()

    def ask_sharing(self, category: str, recipient: str, granted: bool) -> None:
        """A sharing switch asks first (like every consent); ``set_sharing`` once confirmed."""
        self.share_confirm = (category, recipient, granted)
        self.shell.render()

    def set_sharing(self, category: str, recipient: str, granted: bool) -> None:
        """Record the grant/revoke (history, outbox) and remember the choice for the switch."""
        self.share_confirm = None
        with self._lock:
            self.app.family.set_sharing(category, recipient, granted)  # type: ignore[arg-type]
        self.shell.render()

    # ---- registering as a person who needs support (要支援者) ---------------------------------------
    def support_register(self) -> SupportRegister:
        link = self.app.link
        return SupportRegister(link.consents, link.outbox, self.me(), self.app.region.code, link.consents.ledger.is_granted)

    def register_support(self) -> None:
        """After "yes": grant the care-information consent, then queue the registration."""
        self.support_confirm = None
        home = self.app.prefs.home if self.consented(DataCategory.LOCATION) else None
        reg = SupportRegistration(self.identity.name if self.identity else "", self.support_address,
                                  tuple(sorted(self.support_needs)), self.support_caregiver,
                                  home.lat if home else None, home.lon if home else None)
        try:
            support_entity(self.me(), self.app.region.code, reg)  # say what is wrong before consenting
            with self._lock:
                self.app.link.consents.grant(DataCategory.CARE_INFORMATION)
                self.support_register().register(reg)
            self.message = self.app.t("family.support.registered")
        except FamilyError as exc:
            self.message = self.app.t(exc.key)
        self.app.link.kick()
        self.shell.render()

    def withdraw_support(self) -> None:
        self.support_confirm = None
        with self._lock:
            self.support_register().withdraw()
        self.message = self.app.t("family.support.withdrawn")
        self.app.link.kick()
        self.shell.render()

    # ---- alerts ---------------------------------------------------------------------------
    def places(self) -> list[Place]:
        return places(self.app)

    def alerts(self) -> list[Alert]:
        return read_alerts(self.app.link.entities("alerts")) if self.app.link else []

    def banners(self) -> list[Banner]:
        with self._lock:
            banners = AlertDesk(self.app.db, self.app.t).banners(self.alerts(), self.places())
        self._banner_ids = tuple(b.alert.id for b in banners)
        return banners

    def watch_alerts(self) -> None:
        """After every sync (the engine pulls on its schedule and at once on a stream event):
        notify new alerts once, and redraw when the banners, shelter counts or the family's
        answers change; an open HQ screen reloads its snapshot."""
        if self._unsubscribe is None and self.app.link:
            self._unsubscribe = self.app.link.subscribe(self._synced)

    def _synced(self, states: dict[str, FeatureState]) -> None:
        runs = tuple(states[name].last_success_at if name in states else None for name in WATCHED)
        if runs == self._runs:  # another feature, or one just starting: nothing here can have changed
            return
        self._runs = runs
        try:
            with self._lock:
                alerts, places = self.alerts(), self.places()
                AlertDesk(self.app.db, self.app.t).notify_new(alerts, places)
                ids = tuple(b.alert.id for b in AlertDesk(self.app.db, self.app.t).banners(alerts, places))
                answers = self.app.family.signature()
            shelters = self.app.link.shelter_statuses()
            family = states.get(FAMILY_FEATURE)
            ran = family.last_success_at if family else None
            if self.hq is not None:  # the HQ screen was opened: reload it at the family feature's cadence
                if ran != self._hq_ran:
                    self._hq_ran = ran
                    self._background(self._load_hq)
                return
            if (ids, shelters, answers) == (self._banner_ids, self._shelter_sig, self._answers):
                return
            self._banner_ids, self._shelter_sig, self._answers = ids, shelters, answers
            if self.shell.route == "/" or self.shell.route.startswith(SHOWN_ON):  # elsewhere a redraw could eat a tap
                self._redraw()
        except Exception as exc:
            log.info("family alert watcher stopped: %s", type(exc).__name__)
            if self._unsubscribe:
                self._unsubscribe()

    def _redraw(self) -> None:
        # Through the page's executor: an update sent from a background thread alone would
        # wait in Flet's send queue until something else woke the page's event loop.
        self.shell.run_in_background(self.shell.render)

    # ---- what the sync engine brought ----------------------------------------------------------
    @property
    def synced_at(self) -> datetime | None:
        """When the family's answers last arrived (a pull, or an event from the stream)."""
        state = self.app.link.sync.feature_state(FAMILY_FEATURE) if self.app.link else None
        return datetime.fromtimestamp(state.last_success_at, UTC) if state and state.last_success_at else None

    def needs_answer_for_hq(self) -> bool:
        """The HQ asked me to answer and I have not answered since."""
        reminded = self.app.family.reminded_at()
        if reminded is None:
            return False
        mine = self.book().latest(self.me())
        return mine is None or mine.observed_at < reminded

    def hq_remind(self, person: str) -> None:
        self._background(lambda: self.app.family.hq().remind(person) or "family.hq.reminded")

    # ---- export and HQ -------------------------------------------------------------------------
    def export(self, group_id: str) -> None:
        """PFIF 1.4 XML into the app's own data folder (beside the store), path shown on screen."""
        with self._lock:
            self.export_path = str(self.app.family.export(group_id))
        self.message = self.app.t("family.exported")
        self.shell.render()

    def load_hq(self) -> None:
        self._background(self._load_hq)

    def _load_hq(self) -> None:
        """What the HQ screen shows beside the synced shelter statuses: answers, 要支援者, and
        people with names and SOS."""
        self._fetch_identity()
        if not self.is_staff():
            return
        hq = self.app.family.hq()
        self.hq = hq.snapshot()
        self.hq_people = hq.people()
        self.hq_loaded_at = datetime.now(UTC)

    def search_hq(self, text: str) -> None:
        self.hq_query = text.strip()[:60]
        if not self.hq_query:
            self.hq_found = None
            self.shell.render()
            return

        def work() -> None:
            self.hq_found = self.app.family.hq().people(name=self.hq_query)

        self._background(work)

    def hq_resolve(self, person: str) -> None:
        def work() -> str:
            self.app.family.hq().resolve_sos(person)
            self._load_hq()
            return "family.hq.sos_resolved"

        self._background(work)

    def publish_alert(self) -> None:
        """Issue (or update, when one is being edited) the alert in ``alert_form``: the whole
        municipality, or the chosen areas (districts or designated shelters' catchments)."""
        form, link = dict(self.alert_form), self.app.link
        polygon = area_polygon(self.app.family.hq_areas(), list(form["areas"]))  # type: ignore[call-overload]

        def work() -> str:
            self.app.family.hq().issue_alert(hazard=form["hazard"], level=int(form["level"]),  # type: ignore[call-overload]
                                             headline=str(form["headline"])[:200], minutes=int(form["minutes"]),  # type: ignore[call-overload]
                                             polygon=polygon, alert_id=form.get("id"))
            link.kick()
            self.alert_form = {**ALERT_FORM}
            return "family.hq.alert_sent"

        self._background(work)

    def end_alert(self, alert: Alert) -> None:
        link = self.app.link

        def work() -> str:
            self.app.family.hq().end_alert(alert)
            link.kick()
            return "family.hq.alert_ended"

        self._background(work)

    def hq_since(self) -> datetime:
        """Answers count from the newest active alert (else the last 24 hours)."""
        now = datetime.now(UTC)
        active = [a.issued_at for a in self.alerts() if a.active(now)]
        return max(active) if active else now - timedelta(hours=24)


def places(app: Mamori) -> list[Place]:
    return app.family.places()


def current_alerts(app: Mamori) -> list[Alert]:
    """Active alerts for home or position, most severe first (what Home's banners show)."""
    return alerts_for(read_alerts(app.link.entities("alerts")), places(app)) if app.link else []


def controller(app: Mamori, shell: Screens) -> FamilyCtl:
    ctl = shell.screen_state("family", lambda: FamilyCtl(app, shell))
    if not ctl.logged_in and ctl.identity is not None:
        ctl.forget_account()
    return ctl
