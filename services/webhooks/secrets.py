"""Per-tenant webhook signing secrets: how they are made and where they are kept
(MongoDB collection ``webhook_secrets``, one document per tenant).

Unlike API keys (hashes only), a signing secret is stored in clear: Tapedeck must hold
the key itself to compute each request's HMAC, and a hash could not sign. So the
collection is as sensitive as the tenants' receivers: the secret is shown once (when
made), and never goes into a log line, a repr or an error message.

A tenant has a current secret and, for ``GRACE`` after a rotation, the previous one; both
sign meanwhile (the Standard Webhooks header carries several signatures), so a receiver
can switch over without losing a delivery. Rotating again drops the older one at once.

    {_id: tenant, tenant_id, current, created_at, rotated_at,
     previous: secret | None, previous_expires_at: datetime | None}
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.ids import is_plain_id
from services.common.mongo import Doc
from services.webhooks.signing import SECRET_PREFIX

WEBHOOK_SECRETS = "webhook_secrets"
GRACE = timedelta(hours=24)
SECRET_BYTES = 32  # the spec asks for 24 to 64


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class Rotated:
    secret: str = field(repr=False)
    previous_expires_at: datetime | None  # None: there was no secret before


def _now() -> datetime:
    return datetime.now(UTC)


class WebhookSecretStore:
    def __init__(self, db: AsyncDatabase[Doc], *, now: Callable[[], datetime] = _now) -> None:
        self._secrets = db[WEBHOOK_SECRETS]
        self._now = now

    async def create_if_missing(self, tenant_id: str) -> str | None:
        """A new secret for a tenant that has none (its first API key); None when it
        already has one, which is never shown again."""
        _check_tenant(tenant_id)
        secret, now = generate_secret(), self._now()
        doc = {"_id": tenant_id, "tenant_id": tenant_id, "current": secret, "created_at": now,
               "rotated_at": None, "previous": None, "previous_expires_at": None}  # fmt: skip
        try:
            await self._secrets.insert_one(doc)
        except DuplicateKeyError:
            return None
        return secret

    async def rotate(self, tenant_id: str, *, grace: timedelta = GRACE) -> Rotated:
        """Make a new current secret; the one it replaces keeps signing for ``grace``."""
        _check_tenant(tenant_id)
        for _ in range(10):  # only a concurrent rotation of the same tenant loops
            doc = await self._secrets.find_one({"_id": tenant_id})
            if doc is None:
                created = await self.create_if_missing(tenant_id)
                if created is not None:
                    return Rotated(created, None)
                continue
            secret, now = generate_secret(), self._now()
            expires = now + grace
            result = await self._secrets.update_one(
                {"_id": tenant_id, "current": doc["current"]},
                {"$set": {"current": secret, "rotated_at": now, "previous": doc["current"],
                          "previous_expires_at": expires}},
            )  # fmt: skip
            if result.matched_count:
                return Rotated(secret, expires)
        raise RuntimeError(f"could not rotate the webhook secret of tenant {tenant_id!r}")

    async def signing_secrets(self, tenant_id: str) -> list[str]:
        """The secrets a request is signed with now: the current one first, then the
        previous one while its grace period runs. Empty for a tenant without one."""
        doc = await self._secrets.find_one({"_id": tenant_id})
        if doc is None:
            return []
        live = [doc["current"]]
        expires = doc.get("previous_expires_at")
        if doc.get("previous") and expires is not None and _utc(expires) > self._now():
            live.append(doc["previous"])
        return live


def _utc(at: datetime) -> datetime:
    # A client without tz_aware hands back naive datetimes; they are UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _check_tenant(tenant_id: str) -> None:
    if not is_plain_id(tenant_id):
        raise ValueError("tenant must be a plain id (letters, digits, '.', '_', '-'; at most 128)")
