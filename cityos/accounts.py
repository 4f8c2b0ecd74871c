"""Resident and staff accounts: scrypt password hashes, demo accounts for the sample regions."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, select

from cityos.store import Store, account

DEMO_PASSWORD = "mamori-demo"
RESIDENT, SHELTER_STAFF, CITY_STAFF = "resident", "shelter_staff", "city_staff"
STAFF_ROLES = frozenset({SHELTER_STAFF, CITY_STAFF})

# (username, municipality code, roles, display name) — documented in docs/cityos.md.
DEMO_ACCOUNTS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("ube-resident-1", "352021", (RESIDENT,), "宇部 一郎"),
    ("ube-resident-2", "352021", (RESIDENT,), "宇部 花子"),
    ("ube-staff-1", "352021", (RESIDENT, SHELTER_STAFF), "避難所 受付"),
    ("ube-city-1", "352021", (RESIDENT, CITY_STAFF), "災害対策本部"),
    ("aizu-resident-1", "072028", (RESIDENT,), "会津 太郎"),
    ("aizu-staff-1", "072028", (RESIDENT, SHELTER_STAFF), "会津 受付"),
)

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True, slots=True)
class Account:
    sub: str  # pseudonymous, stable; what every token and entity owner refers to
    username: str
    name: str
    municipality_code: str
    roles: tuple[str, ...]

    def get_user_id(self) -> str:  # authlib's user protocol
        return self.sub


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


def _account(row) -> Account:
    return Account(row.sub, row.username, row.name, row.municipality_code, tuple(row.roles))


def create_account(conn: Connection, username: str, password_hash: str, name: str, municipality_code: str, roles: tuple[str, ...]) -> Account:
    sub = uuid.uuid4().hex
    conn.execute(
        account.insert().values(
            sub=sub, username=username, password_hash=password_hash, name=name,
            municipality_code=municipality_code, roles=list(roles),
        )
    )
    return Account(sub, username, name, municipality_code, roles)


def seed_demo_accounts(store: Store) -> None:
    """Create the demo accounts that are missing; existing ones (and their passwords) stay."""
    with store.write() as conn:
        existing = set(conn.execute(select(account.c.username)).scalars())
        missing = [a for a in DEMO_ACCOUNTS if a[0] not in existing]
        # The demo password is published, so one hash (one slow scrypt) serves every demo account.
        demo_hash = hash_password(DEMO_PASSWORD) if missing else ""
        for username, code, roles, name in missing:
            create_account(conn, username, demo_hash, name, code, roles)


def authenticate(store: Store, username: str, password: str) -> Account | None:
    with store.read() as conn:
        row = conn.execute(select(account).where(account.c.username == username)).first()
    if row is None:
        hashlib.scrypt(password.encode(), salt=bytes(16), **_SCRYPT)  # same cost as a real check: no username probing by timing
        return None
    return _account(row) if check_password(password, row.password_hash) else None


def get_account(store: Store, sub: str) -> Account | None:
    with store.read() as conn:
        row = conn.execute(select(account).where(account.c.sub == sub)).first()
    return _account(row) if row else None
