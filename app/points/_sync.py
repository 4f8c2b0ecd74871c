"""Talking to the platform's points authority (cityos ``/cityos/v1/points``).

``PointsSync.sync()`` fetches the rules and signing keys, sends pending entries (only with the
health-activity consent) and applies the verdicts, then pulls the ledger from its cursor
(donations received, expiries, coupons, verdicts from another device). Every step is safe to
repeat after a crash: the platform answers a replayed id with the verdict it already gave, and
the ledger never changes a settled entry.
"""
from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.platform import PlatformError, PlatformHttp
from app.points._ledger import PointsLedger
from app.points._trusted import TrustedKeys
from geo.sql import utc_now
from offline import points_store
from protocol.points import (
    COUPON_SIGNER,
    EVENT_SIGNER,
    ConsentNeeded,
    Coupon,
    InsufficientPoints,
    PlatformRefused,
    Rules,
    verify_coupon_qr,
)

_API = "/cityos/v1/points"
BATCH = 200
CONSENT_PROBLEM = "urn:cityos:problem:consent-required"


@dataclass(frozen=True, slots=True)
class PointsSyncReport:
    sent: int
    confirmed: int
    rejected: int
    pulled: int
    held_on_device: bool  # no consent: nothing was sent
    error: PlatformError | None = None


class PointsSync:
    def __init__(self, ledger: PointsLedger, http: PlatformHttp, *, consented: Callable[[], bool]) -> None:
        self.ledger, self._http, self._consented = ledger, http, consented

    # -- the whole round ------------------------------------------------------------------------
    def sync(self) -> PointsSyncReport:
        """Rules and keys, push, pull. Stops at the first platform error and reports it."""
        sent = confirmed = rejected = pulled = 0
        held = not self._consented()
        try:
            self.refresh_rules()
            self.refresh_keys()
            if not held:
                sent, confirmed, rejected = self.push()
                pulled = self.pull()
        except PlatformError as err:
            held = held or err.problem_type == CONSENT_PROBLEM
            return PointsSyncReport(sent, confirmed, rejected, pulled, held, err)
        return PointsSyncReport(sent, confirmed, rejected, pulled, held)

    def refresh_rules(self) -> Rules:
        rules = Rules.from_json(self._call("GET", "/rules", "points rules"))
        self.ledger.cache_rules(rules)
        return rules

    def refresh_keys(self) -> int:
        body = self._call("GET", "/keys", "points keys")
        trusted = TrustedKeys(self.ledger.db)
        for item in body.get("keys", []):
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(item["publicKey"]))
            for purpose in set(item.get("purposes", [])) & {EVENT_SIGNER, COUPON_SIGNER}:
                trusted.add(public, purpose, self.ledger.municipality_code)
        return len(body.get("keys", []))

    def push(self) -> tuple[int, int, int]:
        """Send pending entries in batches; (sent, confirmed, rejected)."""
        sent = confirmed = rejected = 0
        while batch := self.ledger.pending_payloads(BATCH):
            body = self._call("POST", "/events", "submit points", json={"events": batch})
            verdicts = [v for v in body["results"] if v.get("status") in ("confirmed", "rejected")]
            self.ledger.apply_platform_entries(verdicts)
            self._balance(body)
            sent += len(batch)
            confirmed += sum(v["status"] == "confirmed" for v in verdicts)
            rejected += sum(v["status"] == "rejected" for v in verdicts)
            if len(verdicts) < len(batch):
                raise PlatformError("submit points: the platform left entries undecided")
        return sent, confirmed, rejected

    def pull(self) -> int:
        """Apply the platform's ledger after the stored cursor; return entries changed."""
        changed = 0
        while True:
            after = points_store.get_state(self.ledger.db, "cursor") or "0"
            body = self._call("GET", "/ledger", "points ledger", params={"after": after, "limit": 1000})
            changed += self.ledger.apply_platform_entries(body["entries"])
            points_store.put_state(self.ledger.db, cursor=str(body["cursor"]))
            self._balance(body)
            if not body["hasMore"]:
                return changed

    # -- spending online ----------------------------------------------------------------------------
    def issue_coupon(self, points: int) -> str:
        """Points → a single-use coupon QR for a partner shop (needs the network: the platform
        takes the points off the balance before it signs)."""
        if not self._consented():
            raise ConsentNeeded("coupons need the health-activity consent (the platform keeps the balance)")
        if points > self.ledger.balance().available:
            raise InsufficientPoints(f"coupon: {points} points asked, {self.ledger.balance().available} available")
        try:
            body = self._call("POST", "/coupons", "issue coupon", json={"id": uuid.uuid4().hex, "points": points})
        except PlatformError as err:
            raise _refusal(err) from None
        self.pull()  # brings the coupon's entry and the new balance
        return str(body["coupon"])

    def redeem_coupon(self, text: str) -> Coupon:
        """Shop side: check the signature offline, then redeem once at the platform."""
        coupon = verify_coupon_qr(text, TrustedKeys(self.ledger.db).lookup(COUPON_SIGNER), time.time())
        try:
            self._call("POST", "/coupons/redeem", "redeem coupon", json={"coupon": text})
        except PlatformError as err:
            raise _refusal(err) from None
        return coupon

    # -- transport ---------------------------------------------------------------------------------
    def _balance(self, body: dict[str, Any]) -> None:
        if isinstance(body.get("balance"), int):
            points_store.put_state(self.ledger.db, platform_balance=str(body["balance"]), platform_checked_at=utc_now())

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        return self._http.json(method, _API + path, what, headers={"NGSILD-Tenant": self.ledger.municipality_code},
                               **kwargs)


def _refusal(err: PlatformError) -> Exception:
    if err.problem_type == CONSENT_PROBLEM:
        return ConsentNeeded("the platform has no health-activity consent for this account yet")
    if err.status == 409 and "enough" in (err.detail or ""):
        return InsufficientPoints(err.detail or "not enough points")
    if err.status in (400, 409):
        return PlatformRefused(err.detail or str(err))
    return err
