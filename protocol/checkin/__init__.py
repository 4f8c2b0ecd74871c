"""Check-in formats shared by the app's desks and phones and the platform.

* the evacuee card and its compact CBOR encoding (``card_to_bytes``/``card_from_bytes``);
* the evacuee QR ("MC1:", signed and sealed) and the shelter poster QR ("MS1:");
* key ids and the ``KeyDirectory`` protocol a verifier looks keys up through;
* the wire JSON of desk events and survey answers (``/cityos/v1/checkin``);
* typed errors, each with a message ``key``.
"""
from protocol.checkin._card import (
    INFANT_UNDER_YEARS,
    MAX_MEMBERS,
    CareLevel,
    EmergencyContact,
    EvacueeCard,
    Member,
    Sex,
    StayPlace,
    card_from_bytes,
    card_to_bytes,
    new_card_id,
)
from protocol.checkin._crypto import (
    SEAL_OVERHEAD,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    X25519PrivateKey,
    X25519PublicKey,
    key_id,
    raw_public,
    seal,
    unseal,
)
from protocol.checkin._errors import (
    ALL_ERRORS,
    BadSignature,
    CardTooLarge,
    CheckinError,
    Expired,
    InvalidCard,
    InvalidSurveyAnswer,
    MalformedToken,
    NoQrFound,
    NoShelterKey,
    NotACheckinQr,
    NotCheckedIn,
    NotYetValid,
    Replayed,
    UnknownSigner,
    UnsealFailed,
    VaultKeyError,
    WrongRecipient,
)
from protocol.checkin._keys import KeyDirectory, device_kid, poster_kid, seal_kid
from protocol.checkin._survey import SURVEY, Question, QuestionKind, SurveyResponse, validate_answers
from protocol.checkin._token import (
    CLOCK_SKEW_S,
    EVACUEE_PREFIX,
    MAX_TTL_S,
    POSTER_PREFIX,
    EvacueeToken,
    ShelterPoster,
    make_evacuee_token,
    make_poster_token,
    open_evacuee_card,
    parse_evacuee_token,
    seal_kid_map,
    verify_evacuee_token,
    verify_poster,
)
from protocol.checkin._wire import (
    STAFF_ROLE,
    OwnEvent,
    RemoteEvent,
    WireError,
    b64u,
    event_from_json,
    event_to_json,
    iso_utc,
    normal_time,
    own_event_to_json,
    survey_to_json,
    unb64u,
    valid_id,
)

__all__ = [
    "ALL_ERRORS", "CLOCK_SKEW_S", "EVACUEE_PREFIX", "INFANT_UNDER_YEARS", "MAX_MEMBERS", "MAX_TTL_S",
    "POSTER_PREFIX", "SEAL_OVERHEAD", "STAFF_ROLE", "SURVEY",
    "BadSignature", "CardTooLarge", "CareLevel", "CheckinError", "Ed25519PrivateKey", "Ed25519PublicKey",
    "EmergencyContact", "EvacueeCard", "EvacueeToken", "Expired", "InvalidCard", "InvalidSurveyAnswer",
    "KeyDirectory", "MalformedToken", "Member", "NoQrFound", "NoShelterKey", "NotACheckinQr", "NotCheckedIn",
    "NotYetValid", "OwnEvent", "Question", "QuestionKind", "RemoteEvent", "Replayed", "Sex", "ShelterPoster",
    "StayPlace", "SurveyResponse", "UnknownSigner", "UnsealFailed", "VaultKeyError", "WireError",
    "WrongRecipient", "X25519PrivateKey", "X25519PublicKey",
    "b64u", "card_from_bytes", "card_to_bytes", "device_kid", "event_from_json", "event_to_json", "iso_utc",
    "key_id", "make_evacuee_token", "make_poster_token", "new_card_id", "normal_time", "open_evacuee_card",
    "own_event_to_json", "parse_evacuee_token", "poster_kid", "raw_public", "seal", "seal_kid", "seal_kid_map",
    "survey_to_json", "unb64u", "unseal", "valid_id", "validate_answers", "verify_evacuee_token", "verify_poster",
]
