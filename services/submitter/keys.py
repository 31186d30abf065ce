"""API keys: how they look, how they are hashed, how a presented key is checked, and
where they are kept (MongoDB collection ``api_keys``: hashes only, never a clear key).

A key is ``td_<key id>_<secret>``. Only the SHA-256 of the whole key is stored; the key id
is stored in clear so a key can be listed and revoked without anyone holding it. The
secret has 256 bits of entropy, so a fast unsalted hash is enough: there is nothing to
brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pymongo.asynchronous.database import AsyncDatabase

from schemas.ids import is_plain_id
from services.common.mongo import Doc

KEY_PREFIX = "td"
_KEY_RE = re.compile(r"td_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str
    key_hash: str


def generate_key() -> NewKey:
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id=key_id, key=key, key_hash=hash_key(key))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The key id a well-formed key carries, or None for anything else."""
    match = _KEY_RE.fullmatch(key)
    return match.group(1) if match else None


def matches(key: str, stored_hash: str) -> bool:
    # Constant time, so response timing tells nothing about how much of a hash matched.
    return hmac.compare_digest(hash_key(key), stored_hash)


def display_prefix(key_id: str) -> str:
    """What listings show: enough to recognise a key, useless to authenticate."""
    return f"{KEY_PREFIX}_{key_id}_…"


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


TENANT_ROLE = "tenant"
OPERATOR_ROLE = "operator"
ROLES = frozenset({TENANT_ROLE, OPERATOR_ROLE})
NAME_MAX = 64


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    tenant_id: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    # An operator key opens the operator API (every tenant's jobs, the DLQs); keys stored
    # before roles existed are tenant keys.
    role: str = TENANT_ROLE
    name: str | None = None  # who holds it, for the records of what operators did

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR_ROLE


class KeyRepo(Protocol):
    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def add(self, record: KeyRecord) -> None: ...


class InvalidKeyInput(ValueError):
    """A key cannot be made as asked (its tenant, role or name)."""


class InvalidTenant(InvalidKeyInput):
    pass


def _check_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidKeyInput(f"name must be 1-{NAME_MAX} printable characters")
    return name


async def create_key(
    repo: KeyRepo, tenant_id: str, *, role: str = TENANT_ROLE, name: str | None = None
) -> tuple[KeyRecord, str]:
    """Store a new key for ``tenant_id``; the clear key is returned once and never again."""
    if not is_plain_id(tenant_id):
        raise InvalidTenant(
            "tenant must be a plain id (letters, digits, '.', '_', '-'; at most 128)"
        )
    if role not in ROLES:
        raise InvalidKeyInput(f"role must be one of {sorted(ROLES)}")
    new = generate_key()
    record = KeyRecord(new.key_id, tenant_id, new.key_hash, datetime.now(UTC),
                       role=role, name=_check_name(name))  # fmt: skip
    await repo.add(record)
    return record, new.key


class WebhookSecretIssuer(Protocol):
    async def create_if_missing(self, tenant_id: str) -> str | None: ...


@dataclass(frozen=True)
class IssuedKey:
    record: KeyRecord
    key: str = field(repr=False)
    webhook_secret: str | None = field(repr=False)  # with the tenant's first key only


async def issue_key(
    repo: KeyRepo, webhook_secrets: WebhookSecretIssuer, tenant_id: str, *,
    role: str = TENANT_ROLE, name: str | None = None,
) -> IssuedKey:  # fmt: skip
    """:func:`create_key`, and the tenant's webhook signing secret along with its first
    key (services/webhooks/secrets.py). Both are returned once and never again."""
    record, key = await create_key(repo, tenant_id, role=role, name=name)
    # Made after the key: a secret made for a key that then failed would never be shown.
    return IssuedKey(record, key, await webhook_secrets.create_if_missing(tenant_id))


async def authenticate_record(repo: KeyRepo, key: str | None) -> KeyRecord | None:
    """The live record of a presented key (with its role), or None when the key is
    missing, unknown or revoked."""
    if not key:
        return None
    key_id = key_id_of(key)
    if key_id is None:
        return None
    record = await repo.get(key_id)
    if record is None or record.revoked_at is not None or not matches(key, record.key_hash):
        return None
    return record


async def authenticate(repo: KeyRepo, key: str | None) -> str | None:
    """The tenant a presented key belongs to, or None when it is missing, unknown or revoked."""
    record = await authenticate_record(repo, key)
    return record.tenant_id if record is not None else None


API_KEYS = "api_keys"


class KeyStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._keys = db[API_KEYS]

    async def ensure_indexes(self) -> None:
        await self._keys.create_index([("tenant_id", 1), ("created_at", 1)])

    async def get(self, key_id: str) -> KeyRecord | None:
        doc = await self._keys.find_one({"_id": key_id})
        return _record(doc) if doc else None

    async def add(self, record: KeyRecord) -> None:
        await self._keys.insert_one(
            {
                "_id": record.key_id,
                "tenant_id": record.tenant_id,
                "key_hash": record.key_hash,
                "created_at": record.created_at,
                "revoked_at": record.revoked_at,
                "role": record.role,
                "name": record.name,
            }
        )

    async def list(self, tenant_id: str | None = None) -> list[KeyRecord]:
        query: Doc = {} if tenant_id is None else {"tenant_id": tenant_id}
        cursor = self._keys.find(query).sort([("tenant_id", 1), ("created_at", 1)])
        return [_record(d) async for d in cursor]

    async def revoke(self, key_id: str) -> bool:
        """True when the key existed and was live; revoking twice changes nothing."""
        result = await self._keys.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": datetime.now(UTC)}}
        )
        return bool(result.modified_count)


def _record(doc: Doc) -> KeyRecord:
    return KeyRecord(
        key_id=doc["_id"],
        tenant_id=doc["tenant_id"],
        key_hash=doc["key_hash"],
        created_at=doc["created_at"],
        revoked_at=doc.get("revoked_at"),
        role=doc.get("role") or TENANT_ROLE,
        name=doc.get("name"),
    )
