"""The platform side of the family feature: ``FamilyClient`` speaks cityos's family API
(``/cityos/v1/family``, docs/cityos.md); ``FamilySync`` moves the book to and from it.

Own answers travel as SafetyStatus entities through the outbox and the sync engine; this
module carries what the standard NGSI-LD API cannot: group membership, invites, caregivers,
proxy answers and reading other members' latest status under their consent.
"""
from __future__ import annotations

import uuid
from typing import Any, Literal
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.consent import Consents, DataCategory
from app.devicekeys import KeyStore, get_or_create
from app.family._book import FamilyBook
from app.family._model import Answer, Relation
from app.platform import PlatformError, PlatformHttp
from protocol.entities import iso_utc
from protocol.family import (
    ConsentMissing,
    FamilyError,
    InviteExpired,
    InviteForged,
    InviteMalformed,
    InviteReused,
    NotAllowed,
    UnknownGroup,
    make_invite,
    public_key_text,
)

_BASE = "/cityos/v1/family"
_PROBLEMS: dict[str, type[FamilyError]] = {
    "urn:cityos:problem:family-invite-malformed": InviteMalformed,
    "urn:cityos:problem:family-invite-forged": InviteForged,
    "urn:cityos:problem:family-invite-expired": InviteExpired,
    "urn:cityos:problem:family-invite-reused": InviteReused,
    "urn:cityos:problem:consent-required": ConsentMissing,
    "urn:cityos:problem:forbidden": NotAllowed,
    "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound": UnknownGroup,
}


def invite_key(keys: KeyStore, group_id: str) -> Ed25519PrivateKey:
    """The group's invite signing key on this phone (made on first use, kept in secure storage)."""
    return Ed25519PrivateKey.from_private_bytes(get_or_create(keys, f"mamori.family.invite.{group_id}", 32))


class FamilyClient:
    """HTTP client for cityos's family API. Refusals become typed ``FamilyError``s; a network
    failure stays a (retryable) ``PlatformError``."""

    def __init__(self, http: PlatformHttp) -> None:
        self._http = http

    def create_group(self, group_id: str, name: str, invite_public_key: str) -> dict[str, Any]:
        return self._call("POST", "/groups", "create group", {"id": group_id, "name": name, "inviteKey": invite_public_key})

    def groups(self) -> list[dict[str, Any]]:
        return self._call("GET", "/groups", "family groups")

    def join(self, invite: str) -> dict[str, Any]:
        return self._call("POST", "/join", "join group", {"invite": invite})

    def leave(self, group_id: str) -> None:
        self._call("POST", f"/groups/{group_id}/leave", "leave group")

    def remove(self, group_id: str, person: str) -> dict[str, Any]:
        return self._call("POST", f"/groups/{group_id}/remove", "remove member", {"person": person})

    def group_status(self, group_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/groups/{group_id}/status", "family status")

    def hq_people(self, name: str | None = None, sos_only: bool = False) -> list[dict[str, Any]]:
        """City staff: residents sharing with the city, with names and latest answers."""
        query = "&".join(x for x in (f"name={quote(name)}" if name else "", "sos=true" if sos_only else "") if x)
        return self._call("GET", "/hq/people" + (f"?{query}" if query else ""), "HQ people")

    def remind(self, person: str) -> None:
        """City staff: ask a listed 要支援者 to answer."""
        self._call("POST", "/hq/remind", "remind", {"person": person})

    def reminded_at(self) -> str | None:
        """When the HQ last asked me to answer (ISO 8601), or None."""
        return self._call("GET", "/reminder", "reminder")["remindedAt"]

    def resolve_sos(self, person: str) -> int:
        """Mark the person's open SOS resolved (yourself, or as city staff); returns how many were open."""
        return int(self._call("POST", "/sos/resolve", "resolve SOS", {"person": person})["resolved"])

    def name_caregiver(self, caregiver: str, relation: Relation) -> None:
        self._call("POST", "/caregivers", "name caregiver", {"caregiver": caregiver, "relation": Relation(relation).value})

    def drop_caregiver(self, caregiver: str) -> None:
        self._call("POST", "/caregivers/remove", "withdraw caregiver", {"caregiver": caregiver})

    def send_proxy_answer(self, answer: Answer) -> bool:
        """True when stored; False when the platform already holds a newer answer."""
        body: dict[str, Any] = {"person": answer.person, "status": answer.status.value, "answerId": answer.id,
                                "observedAt": iso_utc(answer.observed_at), "message": answer.message, "place": answer.place}
        if answer.has_location:
            body["location"] = {"type": "Point", "coordinates": [answer.lon, answer.lat]}
        return bool(self._call("POST", "/answers", "proxy answer", {k: v for k, v in body.items() if v is not None})["stored"])

    def _call(self, method: str, path: str, what: str, body: dict[str, Any] | None = None) -> Any:
        try:
            return self._http.json(method, _BASE + path, what, json=body)
        except PlatformError as error:
            typed = _PROBLEMS.get(error.problem_type or "")
            if typed is not None and not error.retryable:
                raise typed(error.detail or str(error)) from None
            raise


class FamilySync:
    """One phone's family feature against the platform."""

    def __init__(self, book: FamilyBook, client: FamilyClient, keys: KeyStore, consents: Consents | None = None) -> None:
        self.book, self.client, self._keys, self._consents = book, client, keys, consents

    def create_group(self, name: str) -> str:
        group_id = uuid.uuid4().hex[:24]
        self.client.create_group(group_id, name, public_key_text(invite_key(self._keys, group_id)))
        self.pull()
        return group_id

    def invite(self, group_id: str, inviter_name: str, ttl_s: int = 15 * 60) -> str:
        """A fresh invite for the QR code (works offline: only the platform checks it later)."""
        name = next((g["name"] for g in self.book.groups() if g["id"] == group_id), "")
        return make_invite(invite_key(self._keys, group_id), group_id, name, inviter_name, ttl_s=ttl_s)

    def join(self, invite: str) -> dict[str, Any]:
        group = self.client.join(invite)
        self.pull()
        return group

    def share(self, category: Literal["safety_status", "location"], recipient: Literal["family", "caregiver"],
              granted: bool) -> None:
        """Grant/revoke letting family (or named caregivers) see my answers / location: recorded in
        the consent history and queued like every consent (the platform enforces and deletes)."""
        if self._consents is None:
            raise FamilyError("sharing needs the consent ledger")
        self._consents.share(DataCategory(category), recipient, granted)

    def push(self) -> tuple[int, int]:
        """Send proxy answers; returns (sent, refused). Refused ones stay on this phone only."""
        sent = refused = 0
        for answer in self.book.pending_proxy_answers():
            try:
                self.client.send_proxy_answer(answer)
                self.book.mark_sent(answer.id)
                sent += 1
            except (ConsentMissing, NotAllowed, UnknownGroup, InviteMalformed):
                self.book.mark_refused(answer.id)
                refused += 1
        return sent, refused

    def pull(self) -> int:
        """Groups, members, caregivers and members' latest status into the book; returns statuses seen."""
        groups = self.client.groups()
        self.book.replace_groups(groups)
        seen = 0
        for group in groups:
            seen += self.apply_status(group["id"], self.client.group_status(group["id"]))
        return seen

    def apply_status(self, group_id: str, rows: list[dict[str, Any]]) -> int:
        """Members' statuses (from a pull or the live stream) into the book; returns how many have one."""
        for row in rows:
            self.book.apply_member_status(row)
        return sum(row.get("status") is not None for row in rows)

    def sync(self) -> tuple[int, int, int]:
        sent, refused = self.push()
        return sent, refused, self.pull()
