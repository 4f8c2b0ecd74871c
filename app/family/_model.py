"""The family-safety vocabulary: statuses, answers, members, and how old an answer is."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class SafetyStatus(str, Enum):
    """One-tap answers; the values are the platform's SafetyStatus.status values."""

    SAFE = "safe"
    NEED_HELP = "needHelp"
    INJURED = "injured"
    EVACUATING = "evacuating"
    AT_SHELTER = "atShelter"

    @property
    def label_key(self) -> str:
        return f"family.status.{self.value}"

    @property
    def is_sos(self) -> bool:
        return self in (SafetyStatus.NEED_HELP, SafetyStatus.INJURED)


class Relation(str, Enum):
    """Who a caregiver is to the person who needs support (要支援者)."""

    FAMILY = "family"
    CARE_MANAGER = "care_manager"  # ケアマネジャー
    WELFARE_COMMISSIONER = "welfare_commissioner"  # 民生委員

    @property
    def label_key(self) -> str:
        return f"family.relation.{self.value}"


MAX_MESSAGE = 140  # fits one SMS with the status and place


@dataclass(frozen=True, slots=True)
class Answer:
    """One safety answer. ``reported_by`` differs from ``person`` for a proxy answer."""

    id: str
    person: str  # the platform's pseudonymous subject id
    status: SafetyStatus
    observed_at: datetime  # aware, UTC
    reported_by: str
    message: str | None = None
    lat: float | None = None
    lon: float | None = None
    place: str | None = None  # e.g. a shelter's name, for the share text and the list
    resolved_at: datetime | None = None  # an SOS marked resolved (by the person or the HQ)
    resolved_by: str | None = None

    @property
    def is_proxy(self) -> bool:
        return self.reported_by != self.person

    @property
    def open_sos(self) -> bool:
        """Needs help / injured, and nobody has marked it resolved: shown until it is."""
        return self.status.is_sos and self.resolved_at is None

    @property
    def has_location(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass(frozen=True, slots=True)
class GroupMember:
    group_id: str
    person: str
    name: str
    role: str  # "owner" | "member"


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """A row of the family list / a pin of the family map: the latest of the person's own
    answers and of proxy answers for them, kept apart so neither hides the other."""

    member: GroupMember
    answer: Answer | None  # the newer of own/proxy; None: no answer, or not shared
    age_s: int | None  # seconds since that answer was given
    own: Answer | None = None
    proxy: Answer | None = None
    shared: bool | None = None  # False: the member does not share answers with you; None: not known yet

    @property
    def sos(self) -> Answer | None:
        return open_sos(self.own, self.proxy)

    @property
    def status_key(self) -> str:
        if self.answer:
            return self.answer.status.label_key
        return "family.status.not_shared" if self.shared is False else "family.status.unknown"


def open_sos(own: Answer | None, proxy: Answer | None) -> Answer | None:
    """The open SOS to keep on screen (the person's own first), even under a newer proxy answer."""
    return next((a for a in (own, proxy) if a is not None and a.open_sos), None)


def age_key(age_s: int | None) -> tuple[str, dict[str, int]]:
    """Message key + values for "how old": just now / n min / n h / n days ago."""
    if age_s is None:
        return "family.age.never", {}
    if age_s < 60:
        return "family.age.just_now", {}
    if age_s < 3600:
        return "family.age.minutes", {"n": age_s // 60}
    if age_s < 86400:
        return "family.age.hours", {"n": age_s // 3600}
    return "family.age.days", {"n": age_s // 86400}
