"""Family safety check (安否確認): groups and invites, one-tap answers (also by a caregiver for a
要支援者, with that person's consent), disaster alerts and who they target, "share as text",
PFIF 1.4 export, and the disaster HQ's queries. No UI here: views render what this returns.

    book = FamilyBook(db, keys, me=sub, municipality_code="352021", consented=ledger.is_granted, outbox=outbox)
    book.answer(SafetyStatus.AT_SHELTER, place="宇部市立琴芝小学校")
    share_text(book.latest(sub), Translator("ja"))           # "安否: 避難所にいる / 宇部市立琴芝小学校 / 14:02"
    alerts = read_alerts(engine.entities("alerts"))           # kept offline by the sync engine
    AlertDesk(db, t).banners(alerts, [Place(lat, lon, "352021")])
"""
from app.family._alerts import AlertDesk, Banner, alerts_for, read_alerts
from app.family._areas import Areas, area_polygon, catchments, hq_areas
from app.family._book import (
    FamilyBook,
    answer_from_entity,
    status_entity,
    status_entity_id,
)
from app.family._hq import (
    HqPerson,
    HqSnapshot,
    MapPoint,
    ShelterRow,
    SupportPerson,
    answers_from,
    counts_by_area,
    end_alert,
    hq_people,
    issue_alert,
    load_snapshot,
    map_points,
    shelter_board,
    unanswered,
)
from app.family._model import (
    Answer,
    GroupMember,
    MemberStatus,
    Relation,
    SafetyStatus,
    age_key,
)
from app.family._pfif import export_pfif
from app.family._remote import FamilyClient, FamilySync, invite_key
from app.family._service import FEATURE, LOCAL_ME, SHARES, STAFF_ROLE, FamilyService, Whereabouts, poll_interval
from app.family._service import feature as sync_feature
from app.family._share import share_text
from app.family._support import NEEDS, SupportRegister, SupportRegistration, needs_words, support_entity
from protocol.family import (
    INVITE_PREFIX,
    Alert,
    ConsentMissing,
    FamilyError,
    InvalidAlert,
    InvalidAnswer,
    Invite,
    InviteExpired,
    InviteForged,
    InviteMalformed,
    InviteReused,
    NotAllowed,
    Place,
    UnknownGroup,
    alert_entity,
    alert_from_entity,
    make_invite,
    parse_invite,
    public_key_text,
    verify_invite,
)

__all__ = [
    "FEATURE",
    "INVITE_PREFIX",
    "LOCAL_ME",
    "NEEDS",
    "SHARES",
    "STAFF_ROLE",
    "Alert",
    "AlertDesk",
    "Answer",
    "Areas",
    "Banner",
    "ConsentMissing",
    "FamilyBook",
    "FamilyClient",
    "FamilyError",
    "FamilyService",
    "FamilySync",
    "GroupMember",
    "HqPerson",
    "HqSnapshot",
    "InvalidAlert",
    "InvalidAnswer",
    "Invite",
    "InviteExpired",
    "InviteForged",
    "InviteMalformed",
    "InviteReused",
    "MapPoint",
    "MemberStatus",
    "NotAllowed",
    "Place",
    "Relation",
    "SafetyStatus",
    "ShelterRow",
    "SupportPerson",
    "SupportRegister",
    "SupportRegistration",
    "UnknownGroup",
    "Whereabouts",
    "age_key",
    "alert_entity",
    "alert_from_entity",
    "alerts_for",
    "answer_from_entity",
    "answers_from",
    "area_polygon",
    "catchments",
    "counts_by_area",
    "end_alert",
    "export_pfif",
    "hq_areas",
    "hq_people",
    "invite_key",
    "issue_alert",
    "load_snapshot",
    "make_invite",
    "map_points",
    "needs_words",
    "parse_invite",
    "poll_interval",
    "public_key_text",
    "read_alerts",
    "share_text",
    "shelter_board",
    "status_entity",
    "status_entity_id",
    "support_entity",
    "sync_feature",
    "unanswered",
    "verify_invite",
]
