"""Registering as a person who needs support in a disaster (要支援者): what support, who the
caregiver is, and where — sent to the city only with the ``care_information`` consent.

The registration is one ``CareInformation`` entity (``supportNeeded: true``) through the outbox,
so it waits offline like any write; the city's HQ lists it (``app.family._hq.support_people``).
Withdrawing is revoking the consent: the outbox drops anything queued and the platform deletes
its copy (cityos deletes a category's data when its last grant is revoked).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.consent import Consents, DataCategory
from app.family._book import person_urn
from offline.outbox import Outbox
from protocol.entities import geo_point, make_entity, rel
from protocol.family import ConsentMissing, InvalidAnswer

CATEGORY = DataCategory.CARE_INFORMATION
NEEDS = ("wheelchair", "oxygen", "dialysis", "bedridden", "dementia", "hearing", "vision", "medication", "infant", "language")


@dataclass(frozen=True, slots=True)
class SupportRegistration:
    name: str
    address: str
    needs: tuple[str, ...]
    caregiver: str | None = None  # the caregiver's pseudonymous id (someone in a family group)
    lat: float | None = None  # home, only with the location consent
    lon: float | None = None


def support_entity(person: str, municipality_code: str, reg: SupportRegistration) -> dict:
    """The CareInformation entity the city's HQ reads."""
    unknown = [n for n in reg.needs if n not in NEEDS]
    if unknown or not reg.needs:
        raise InvalidAnswer(f"needs must be one or more of {', '.join(NEEDS)}; got {', '.join(unknown) or 'none'}")
    if not reg.name.strip() or len(reg.name) > 60 or len(reg.address) > 120:
        raise InvalidAnswer("name (1-60 characters) and address (at most 120) are needed")
    attrs: dict = {"person": rel(person_urn(person)), "supportNeeded": True, "name": reg.name.strip(),
                   "address": reg.address.strip() or None, "needs": list(dict.fromkeys(reg.needs))}
    if reg.caregiver:
        attrs["caregiver"] = rel(person_urn(reg.caregiver))
    if reg.lat is not None and reg.lon is not None:
        attrs["location"] = geo_point(reg.lat, reg.lon)
    return make_entity("CareInformation", person, municipality_code, **attrs)


class SupportRegister:
    def __init__(self, consents: Consents, outbox: Outbox, person: str, municipality_code: str,
                 consented: Callable[[str], bool]) -> None:
        self._consents, self._outbox, self._consented = consents, outbox, consented
        self.person, self.municipality_code = person, municipality_code

    @property
    def registered(self) -> bool:
        return self._consented(CATEGORY.value)

    def register(self, reg: SupportRegistration) -> None:
        """Queue the registration; the consent must have been given (the screen asks first)."""
        if not self._consented(CATEGORY.value):
            raise ConsentMissing("registering as needing support needs the care information consent", CATEGORY.value)
        if reg.lat is not None and not self._consented(DataCategory.LOCATION.value):
            raise ConsentMissing("sending where you live needs the location consent", DataCategory.LOCATION.value)
        entity = support_entity(self.person, self.municipality_code, reg)
        self._outbox.enqueue(CATEGORY.value, entity, f"support:{self.person}")

    def withdraw(self) -> None:
        """Revoke the consent: queued data dropped, the city's copy deleted."""
        self._consents.revoke(CATEGORY)


def needs_words(needs: Sequence[str], t: Callable[..., str]) -> str:
    return "、".join(t(f"family.need.{n}") if n in NEEDS else n for n in needs)
