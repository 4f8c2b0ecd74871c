"""Health points (健康ポイント): earn for activity, spend at shops, donate, pay ride fares.

Resident::

    ledger = PointsLedger(db, keystore, "352021", ConsentLedger(db).is_granted_health)  # see docs
    ledger.record_steps(date.today(), 8200)              # pending, provisional points
    ledger.balance()                                     # confirmed / pending / shared
    ledger.weekly_chart(first, last)                     # [ChartPoint(start, steps, points)]

The platform (``cityos.points``) is the authority for the balance; ``PointsSync`` sends pending
entries and applies its verdicts. Every failure on bad input is a ``PointsError`` with a ``key``.
"""
from app.points._csv import parse_steps_csv
from app.points._ledger import Balance, ChartPoint, Entry, ImportReport, PointsLedger
from app.points._service import FEATURE, PointsService, consent_check, ledger_over, pay_ride_fare
from app.points._service import feature as sync_feature
from app.points._sync import PointsSync, SyncReport
from app.points._trusted import TrustedKeys
from protocol.points import (
    COUPON_PREFIX,
    COUPON_SIGNER,
    EVENT_PREFIX,
    EVENT_SIGNER,
    JST,
    QR_ACTIVITIES,
    REJECT_KEYS,
    Activity,
    ActivityRule,
    AlreadyClaimed,
    BadSignature,
    Cause,
    ConsentNeeded,
    Coupon,
    Credit,
    CreditResult,
    CsvImportError,
    DayTally,
    EventQr,
    Expired,
    InsufficientPoints,
    InvalidEntry,
    MalformedQr,
    NotAPointsQr,
    NotYetValid,
    OverDailyLimit,
    PlatformRefused,
    PointsError,
    Rules,
    RulesMissing,
    Spend,
    TooOld,
    UnknownSigner,
    WrongMunicipality,
    credit,
    default_rules,
    expired_total,
    make_coupon_qr,
    make_event_qr,
    reject_key,
    today_jst,
    verify_coupon_qr,
    verify_event_qr,
)

__all__ = [
    "FEATURE", "PointsService", "consent_check", "ledger_over", "pay_ride_fare", "sync_feature",
    "COUPON_PREFIX",
    "COUPON_SIGNER",
    "EVENT_PREFIX",
    "EVENT_SIGNER",
    "JST",
    "QR_ACTIVITIES",
    "REJECT_KEYS",
    "Activity",
    "ActivityRule",
    "AlreadyClaimed",
    "BadSignature",
    "Balance",
    "Cause",
    "ChartPoint",
    "ConsentNeeded",
    "Coupon",
    "Credit",
    "CreditResult",
    "CsvImportError",
    "DayTally",
    "Entry",
    "EventQr",
    "Expired",
    "ImportReport",
    "InsufficientPoints",
    "InvalidEntry",
    "MalformedQr",
    "NotAPointsQr",
    "NotYetValid",
    "OverDailyLimit",
    "PlatformRefused",
    "PointsError",
    "PointsLedger",
    "PointsSync",
    "Rules",
    "RulesMissing",
    "Spend",
    "SyncReport",
    "TooOld",
    "TrustedKeys",
    "UnknownSigner",
    "WrongMunicipality",
    "credit",
    "default_rules",
    "expired_total",
    "make_coupon_qr",
    "make_event_qr",
    "parse_steps_csv",
    "reject_key",
    "today_jst",
    "verify_coupon_qr",
    "verify_event_qr",
]
