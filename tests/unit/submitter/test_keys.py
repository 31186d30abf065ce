"""API keys: format, hashing, header parsing and authentication, with an in-memory store."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import pytest

from services.submitter.keys import (
    InvalidTenant,
    authenticate,
    create_key,
    display_prefix,
    generate_key,
    hash_key,
    issue_key,
    key_id_of,
    matches,
    presented_key,
)
from services.webhooks.secrets import WebhookSecretStore
from tests.support.fakes import MemoryKeys, MemoryMongo

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.mongo import Doc


def test_generated_keys_are_unique_parseable_and_stored_only_as_hashes() -> None:
    keys = [generate_key() for _ in range(200)]
    assert len({k.key for k in keys}) == 200
    for new in keys:
        assert key_id_of(new.key) == new.key_id
        assert new.key_hash == hash_key(new.key) and new.key not in new.key_hash
        assert len(new.key_hash) == 64
        assert matches(new.key, new.key_hash)
        assert not matches(new.key + "x", new.key_hash)
        assert display_prefix(new.key_id).startswith(f"td_{new.key_id}_")


@pytest.mark.parametrize(
    "text", ["", "td_", "nope", "td_zzzzzzzzzzzz_" + "a" * 43, "td_0123456789ab_short", "x" * 500]
)
def test_malformed_keys_carry_no_key_id(text: str) -> None:
    assert key_id_of(text) is None


@pytest.mark.parametrize(
    ("authorization", "x_api_key", "expected"),
    [
        ("Bearer k1", None, "k1"),
        ("bearer   k1  ", None, "k1"),
        (None, "k2", "k2"),
        ("Bearer k1", "k2", "k2"),
        ("Basic k1", None, None),
        ("Bearer", None, None),
        ("Bearer ", "  ", None),
        (None, None, None),
    ],
)
def test_presented_key(
    authorization: str | None, x_api_key: str | None, expected: str | None
) -> None:
    assert presented_key(authorization, x_api_key) == expected


async def test_authenticate_accepts_live_keys_only() -> None:
    repo = MemoryKeys()
    record, key = await create_key(repo, "acme")
    assert record.tenant_id == "acme" and record.revoked_at is None
    assert await authenticate(repo, key) == "acme"

    assert await authenticate(repo, None) is None
    assert await authenticate(repo, "") is None
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert await authenticate(repo, tampered) is None
    assert await authenticate(repo, generate_key().key) is None  # well formed, unknown id

    repo.records[record.key_id] = dataclasses.replace(record, revoked_at=datetime.now(UTC))
    assert await authenticate(repo, key) is None


@pytest.mark.parametrize("tenant", ["", "../x", "a/b", "-a", "a" * 129, "a..b", "é"])
async def test_tenants_must_be_plain_ids(tenant: str) -> None:
    repo = MemoryKeys()
    with pytest.raises(InvalidTenant):
        await create_key(repo, tenant)
    assert repo.records == {}


async def test_a_tenants_first_key_comes_with_its_webhook_secret_once() -> None:
    repo = MemoryKeys()
    secrets = WebhookSecretStore(cast("AsyncDatabase[Doc]", MemoryMongo()))
    first = await issue_key(repo, secrets, "acme")
    assert first.webhook_secret is not None and first.webhook_secret.startswith("whsec_")
    assert first.key not in repr(first) and first.webhook_secret not in repr(first)
    assert await authenticate(repo, first.key) == "acme"
    assert await secrets.signing_secrets("acme") == [first.webhook_secret]

    second = await issue_key(repo, secrets, "acme")
    assert second.webhook_secret is None  # shown with the first key only
    other = await issue_key(repo, secrets, "other")
    assert other.webhook_secret not in (None, first.webhook_secret)
