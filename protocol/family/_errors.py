"""Typed family-safety errors. Each carries a message key (assets/i18n/family.*.json) so a
screen shows a clear reason and tests can tell failures apart. Messages name what failed and
where, never personal data or token contents."""
from __future__ import annotations


class FamilyError(Exception):
    """Base of every error this package raises on bad input. ``key`` names the message to show."""

    key = "family.error.generic"


class InviteMalformed(FamilyError):
    """Not a family invite, or damaged (cut off, mistyped, wrong version)."""

    key = "family.error.invite_malformed"


class InviteForged(FamilyError):
    """The signature does not match the group's invite key: forged or altered."""

    key = "family.error.invite_forged"


class InviteExpired(FamilyError):
    key = "family.error.invite_expired"


class InviteReused(FamilyError):
    """Each invite admits one person once."""

    key = "family.error.invite_reused"


class UnknownGroup(FamilyError):
    key = "family.error.unknown_group"


class NotAllowed(FamilyError):
    """Not a member / not the group's owner / not a named caregiver of that person."""

    key = "family.error.not_allowed"


class ConsentMissing(FamilyError):
    """The person has not (or no longer) consented to what this needs. ``switch`` names the
    consent category whose switch would allow it (the message names that switch)."""

    key = "family.error.consent_missing"

    def __init__(self, message: str = "", switch: str | None = None) -> None:
        super().__init__(message)
        if switch:
            self.key = f"family.error.consent_missing.{switch}"


class InvalidAnswer(FamilyError):
    key = "family.error.invalid_answer"


class InvalidAlert(FamilyError):
    """An alert from the platform that cannot be understood; it is skipped, never half-shown."""

    key = "family.error.invalid_alert"
