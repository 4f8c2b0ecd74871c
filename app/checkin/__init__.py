"""Shelter QR check-in: evacuee card, signed and sealed QR, self check-in, staff desk, survey.

Resident::

    vault = CardVault(db, key_from_secure_storage); vault.save(card)
    qr = show_qr(card, device_key, StoredKeyDirectory(db), "072028")   # qr.png(), qr.version
    ResidentCheckins(db, keys).check_in(read_qr_texts(frame)[0], card)

Desk::

    desk = ShelterDesk(db, keys, [shelter_private_key], desk_key, shelter_id, "072028")
    desk.check_in_image(frame)          # -> DeskCheckIn(card=...), or a typed CheckinError
    summaries_csv(desk.summaries())

Every failure on bad input is a ``CheckinError`` subclass with a message ``key``.
"""
from protocol.checkin._card import (CareLevel, EmergencyContact, EvacueeCard, Member, Sex, StayPlace, card_from_bytes,
                               card_to_bytes, new_card_id)
from protocol.checkin._crypto import new_at_rest_key
from app.checkin._desk import (CSV_COLUMNS, DeskCheckIn, EvacueeEntry, RemoteEvent, ShelterDesk, ShelterSummary,
                               summaries_csv)
from protocol.checkin._errors import (ALL_ERRORS, BadSignature, CardTooLarge, CheckinError, Expired, InvalidCard,
                                 InvalidSurveyAnswer, MalformedToken, NoQrFound, NoShelterKey, NotACheckinQr,
                                 NotCheckedIn, NotYetValid, Replayed, UnknownSigner, UnsealFailed, VaultKeyError,
                                 WrongRecipient)
from protocol.checkin._keys import KeyDirectory, StoredKeyDirectory, device_kid, poster_kid, seal_kid
from app.checkin._platform import (CheckinPlatform, SyncReport, Identity, desk_seal_keys, save_identity,
                                   saved_identity)
from app.checkin._resident import CardVault, CheckinEvent, EvacueeQr, ResidentCheckins, show_qr
from app.checkin._scan import read_qr_texts
from protocol.checkin._survey import SURVEY, Question, QuestionKind, SurveyAnswers, SurveyResponse, validate_answers
from protocol.checkin._token import (EVACUEE_PREFIX, POSTER_PREFIX, EvacueeToken, ShelterPoster, make_evacuee_token,
                                make_poster_token, open_evacuee_card, parse_evacuee_token, verify_evacuee_token,
                                verify_poster)
from protocol.checkin._wire import STAFF_ROLE

__all__ = [
    "ALL_ERRORS", "CSV_COLUMNS", "EVACUEE_PREFIX", "POSTER_PREFIX", "STAFF_ROLE", "SURVEY",
    "BadSignature", "CardTooLarge", "CardVault", "CareLevel", "CheckinError", "CheckinEvent", "CheckinPlatform",
    "DeskCheckIn", "SyncReport", "Identity",
    "EmergencyContact", "EvacueeCard", "EvacueeEntry", "EvacueeQr", "EvacueeToken", "Expired", "InvalidCard",
    "InvalidSurveyAnswer", "KeyDirectory", "MalformedToken", "Member", "NoQrFound", "NoShelterKey", "NotACheckinQr",
    "NotCheckedIn", "NotYetValid", "Question", "QuestionKind", "RemoteEvent", "Replayed", "ResidentCheckins",
    "Sex", "ShelterDesk", "ShelterPoster", "ShelterSummary", "StayPlace", "StoredKeyDirectory", "SurveyAnswers",
    "SurveyResponse", "UnknownSigner", "UnsealFailed", "VaultKeyError", "WrongRecipient",
    "card_from_bytes", "card_to_bytes", "desk_seal_keys", "device_kid", "make_evacuee_token", "make_poster_token",
    "new_at_rest_key", "new_card_id", "open_evacuee_card", "parse_evacuee_token", "poster_kid",
    "read_qr_texts", "save_identity", "saved_identity", "seal_kid", "show_qr", "summaries_csv", "validate_answers",
    "verify_evacuee_token", "verify_poster",
]
