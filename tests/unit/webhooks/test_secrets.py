"""Webhook signing secrets: their shape, one per tenant, rotation with a grace period."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

import pytest

from services.webhooks.secrets import GRACE, WebhookSecretStore, generate_secret
from tests.support.fakes import MemoryMongo

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.mongo import Doc


def memory_store(now: Callable[[], datetime] | None = None) -> WebhookSecretStore:
    db = cast("AsyncDatabase[Doc]", MemoryMongo())
    return WebhookSecretStore(db) if now is None else WebhookSecretStore(db, now=now)


class Wall:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_secrets_follow_the_spec_and_never_repeat() -> None:
    made = {generate_secret() for _ in range(200)}
    assert len(made) == 200
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


async def test_a_tenant_gets_one_secret_shown_once() -> None:
    store = memory_store()
    first = await store.create_if_missing("acme")
    assert first is not None
    assert await store.create_if_missing("acme") is None
    assert await store.signing_secrets("acme") == [first]
    assert await store.signing_secrets("other") == []


async def test_rotation_keeps_the_previous_secret_for_the_grace_period() -> None:
    wall = Wall()
    store = memory_store(wall)
    first = await store.create_if_missing("acme")
    rotated = await store.rotate("acme")
    assert rotated.secret != first and rotated.previous_expires_at == wall.now + GRACE
    assert rotated.secret not in repr(rotated)
    assert await store.signing_secrets("acme") == [rotated.secret, first]

    wall.now += GRACE - timedelta(seconds=1)
    assert await store.signing_secrets("acme") == [rotated.secret, first]
    wall.now += timedelta(seconds=1)
    assert await store.signing_secrets("acme") == [rotated.secret]


async def test_rotating_twice_drops_the_oldest_at_once() -> None:
    store = memory_store()
    first = await store.create_if_missing("acme")
    second = (await store.rotate("acme")).secret
    third = (await store.rotate("acme")).secret
    assert await store.signing_secrets("acme") == [third, second]
    assert first not in await store.signing_secrets("acme")


async def test_rotating_a_tenant_without_a_secret_makes_its_first() -> None:
    store = memory_store()
    rotated = await store.rotate("acme")
    assert rotated.previous_expires_at is None
    assert await store.signing_secrets("acme") == [rotated.secret]


@pytest.mark.parametrize("tenant", ["", "../x", "a/b", "a..b"])
async def test_tenants_must_be_plain_ids(tenant: str) -> None:
    store = memory_store()
    with pytest.raises(ValueError, match="plain id"):
        await store.create_if_missing(tenant)
    with pytest.raises(ValueError, match="plain id"):
        await store.rotate(tenant)
