"""Typed check-in errors. Each carries a message key (translated in assets/i18n/checkin.*.json)
so a screen shows the resident or desk staff a clear reason, and tests can tell failures apart.

Messages never contain personal data or token contents: only what failed and where.
"""
from __future__ import annotations


class CheckinError(Exception):
    """Base of every error this package raises on bad input. ``key`` names the message to show."""

    key = "checkin.error.generic"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedToken(CheckinError):
    """The QR text or bytes are not a Mamori token of the expected kind (truncated, garbled)."""

    key = "checkin.error.malformed"


class NotACheckinQr(CheckinError):
    """A QR was read but it is something else (a web link, a shelter poster at the desk, ...)."""

    key = "checkin.error.not_checkin_qr"


class UnknownSigner(CheckinError):
    """The token is signed by a key this device does not know (unregistered phone or poster key)."""

    key = "checkin.error.unknown_signer"


class NoShelterKey(CheckinError):
    """The phone has not yet fetched its municipality's shelter key, so it cannot seal a card."""

    key = "checkin.error.no_shelter_key"


class BadSignature(CheckinError):
    """The signature does not match: the token was forged or altered."""

    key = "checkin.error.bad_signature"


class Expired(CheckinError):
    key = "checkin.error.expired"


class NotYetValid(CheckinError):
    key = "checkin.error.not_yet_valid"


class Replayed(CheckinError):
    """This exact QR was already used; the resident must show a freshly generated one."""

    key = "checkin.error.replayed"


class WrongRecipient(CheckinError):
    """The card is sealed to another municipality's shelter key (or an old, retired key)."""

    key = "checkin.error.wrong_recipient"


class UnsealFailed(CheckinError):
    """The sealed card could not be opened: ciphertext damaged or not made for this key."""

    key = "checkin.error.unseal_failed"


class InvalidCard(CheckinError):
    """The evacuee card's fields are missing, of the wrong type or out of range."""

    key = "checkin.error.invalid_card"


class CardTooLarge(CheckinError):
    """The card does not fit a QR code a phone camera can read from a screen."""

    key = "checkin.error.card_too_large"


class NoQrFound(CheckinError):
    """The image could not be read, or no QR code was found in it."""

    key = "checkin.error.no_qr"


class VaultKeyError(CheckinError):
    """Encrypted data at rest could not be opened with the key given (wrong key or damaged data)."""

    key = "checkin.error.vault_key"


class NotCheckedIn(CheckinError):
    key = "checkin.error.not_checked_in"


class InvalidSurveyAnswer(CheckinError):
    key = "checkin.error.invalid_survey_answer"


ALL_ERRORS: tuple[type[CheckinError], ...] = (
    CheckinError, MalformedToken, NotACheckinQr, UnknownSigner, NoShelterKey, BadSignature, Expired,
    NotYetValid, Replayed, WrongRecipient, UnsealFailed, InvalidCard, CardTooLarge, NoQrFound,
    VaultKeyError, NotCheckedIn, InvalidSurveyAnswer,
)
