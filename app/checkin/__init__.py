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
from app.checkin._answers import SurveyAnswers
from app.checkin._atrest import new_at_rest_key
from app.checkin._desk import CSV_COLUMNS, DeskCheckIn, EvacueeEntry, ShelterDesk, ShelterSummary, summaries_csv
from app.checkin._keystore import StoredKeyDirectory
from app.checkin._platform import CheckinPlatform, SyncReport, desk_seal_keys
from app.checkin._resident import CardVault, CheckinEvent, EvacueeQr, ResidentCheckins, show_qr
from app.checkin._scan import read_qr_texts
from protocol.checkin import (
                                   ALL_ERRORS,
                                   EVACUEE_PREFIX,
                                   POSTER_PREFIX,
                                   STAFF_ROLE,
                                   SURVEY,
                                   BadSignature,
                                   CardTooLarge,
                                   CareLevel,
                                   CheckinError,
                                   EmergencyContact,
                                   EvacueeCard,
                                   EvacueeToken,
                                   Expired,
                                   InvalidCard,
                                   InvalidSurveyAnswer,
                                   KeyDirectory,
                                   MalformedToken,
                                   Member,
                                   NoQrFound,
                                   NoShelterKey,
                                   NotACheckinQr,
                                   NotCheckedIn,
                                   NotYetValid,
                                   Question,
                                   QuestionKind,
                                   RemoteEvent,
                                   Replayed,
                                   Sex,
                                   ShelterPoster,
                                   StayPlace,
                                   SurveyResponse,
                                   UnknownSigner,
                                   UnsealFailed,
                                   VaultKeyError,
                                   WrongRecipient,
                                   card_from_bytes,
                                   card_to_bytes,
                                   device_kid,
                                   make_evacuee_token,
                                   make_poster_token,
                                   new_card_id,
                                   open_evacuee_card,
                                   parse_evacuee_token,
                                   poster_kid,
                                   seal_kid,
                                   validate_answers,
                                   verify_evacuee_token,
                                   verify_poster,
)

__all__ = [
                                   "ALL_ERRORS",
                                   "CSV_COLUMNS",
                                   "EVACUEE_PREFIX",
                                   "POSTER_PREFIX",
                                   "STAFF_ROLE",
                                   "SURVEY",
                                   "BadSignature",
                                   "CardTooLarge",
                                   "CardVault",
                                   "CareLevel",
                                   "CheckinError",
                                   "CheckinEvent",
                                   "CheckinPlatform",
                                   "DeskCheckIn",
                                   "EmergencyContact",
                                   "EvacueeCard",
                                   "EvacueeEntry",
                                   "EvacueeQr",
                                   "EvacueeToken",
                                   "Expired",
                                   "InvalidCard",
                                   "InvalidSurveyAnswer",
                                   "KeyDirectory",
                                   "MalformedToken",
                                   "Member",
                                   "NoQrFound",
                                   "NoShelterKey",
                                   "NotACheckinQr",
                                   "NotCheckedIn",
                                   "NotYetValid",
                                   "Question",
                                   "QuestionKind",
                                   "RemoteEvent",
                                   "Replayed",
                                   "ResidentCheckins",
                                   "Sex",
                                   "ShelterDesk",
                                   "ShelterPoster",
                                   "ShelterSummary",
                                   "StayPlace",
                                   "StoredKeyDirectory",
                                   "SurveyAnswers",
                                   "SurveyResponse",
                                   "SyncReport",
                                   "UnknownSigner",
                                   "UnsealFailed",
                                   "VaultKeyError",
                                   "WrongRecipient",
                                   "card_from_bytes",
                                   "card_to_bytes",
                                   "desk_seal_keys",
                                   "device_kid",
                                   "make_evacuee_token",
                                   "make_poster_token",
                                   "new_at_rest_key",
                                   "new_card_id",
                                   "open_evacuee_card",
                                   "parse_evacuee_token",
                                   "poster_kid",
                                   "read_qr_texts",
                                   "seal_kid",
                                   "show_qr",
                                   "summaries_csv",
                                   "validate_answers",
                                   "verify_evacuee_token",
                                   "verify_poster",
]
