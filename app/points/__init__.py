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
from protocol.points._errors import (
    REJECT_KEYS,
    AlreadyClaimed,
    BadSignature,
    ConsentNeeded,
    CsvImportError,
    Expired,
    InsufficientPoints,
    InvalidEntry,
    MalformedQr,
    NotAPointsQr,
    NotYetValid,
    OverDailyLimit,
    PlatformRefused,
    PointsError,
    RulesMissing,
    TooOld,
    UnknownSigner,
    WrongMunicipality,
    reject_key,
)
from app.points._ledger import Balance, ChartPoint, Entry, ImportReport, PointsLedger
from protocol.points._qr import (
    COUPON_PREFIX,
    COUPON_SIGNER,
    EVENT_PREFIX,
    EVENT_SIGNER,
    Coupon,
    EventQr,
    TrustedKeys,
    make_coupon_qr,
    make_event_qr,
    verify_coupon_qr,
    verify_event_qr,
)
from protocol.points._rules import (
    JST,
    QR_ACTIVITIES,
    Activity,
    ActivityRule,
    Cause,
    Credit,
    CreditResult,
    DayTally,
    Rules,
    Spend,
    credit,
    default_rules,
    expired_total,
    today_jst,
)
from app.points._sync import PointsSync, SyncReport

__all__ = [
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
