"""Family-safety formats shared by the app and the platform: the invite token ("MF1:"), the
``Alert`` entity, and the typed errors (each with a message ``key``)."""
from protocol.family._alert import LEVELS, Alert, Place, alert_entity, alert_from_entity
from protocol.family._errors import (
    ConsentMissing,
    FamilyError,
    InvalidAlert,
    InvalidAnswer,
    InviteExpired,
    InviteForged,
    InviteMalformed,
    InviteReused,
    NotAllowed,
    UnknownGroup,
)
from protocol.family._invite import (
    DEFAULT_TTL_S,
    INVITE_PREFIX,
    MAX_TTL_S,
    Invite,
    make_invite,
    parse_invite,
    public_key_from_text,
    public_key_text,
    verify_invite,
)

__all__ = [
    "DEFAULT_TTL_S", "INVITE_PREFIX", "LEVELS", "MAX_TTL_S",
    "Alert", "ConsentMissing", "FamilyError", "InvalidAlert", "InvalidAnswer", "Invite", "InviteExpired",
    "InviteForged", "InviteMalformed", "InviteReused", "NotAllowed", "Place", "UnknownGroup",
    "alert_entity", "alert_from_entity", "make_invite", "parse_invite", "public_key_from_text",
    "public_key_text", "verify_invite",
]
