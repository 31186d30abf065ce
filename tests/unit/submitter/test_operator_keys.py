"""Key roles: tenant keys by default (also those stored before roles existed), operator
keys with a name, and the record authentication hands back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import pytest

from services.submitter.keys import (
    OPERATOR_ROLE,
    TENANT_ROLE,
    InvalidKeyInput,
    KeyStore,
    authenticate,
    authenticate_record,
    create_key,
    issue_key,
)
from services.webhooks.secrets import WebhookSecretStore
from tests.support.fakes import MemoryKeys, MemoryMongo

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from services.common.mongo import Doc


async def test_keys_are_tenant_keys_unless_made_for_an_operator() -> None:
    repo = MemoryKeys()
    plain, plain_key = await create_key(repo, "acme")
    assert (plain.role, plain.name, plain.is_operator) == (TENANT_ROLE, None, False)
    ops, ops_key = await create_key(repo, "ops", role=OPERATOR_ROLE, name="  night-shift ")
    assert (ops.role, ops.name, ops.is_operator) == (OPERATOR_ROLE, "night-shift", True)

    found = await authenticate_record(repo, ops_key)
    assert found == ops
    assert await authenticate(repo, ops_key) == "ops"
    assert await authenticate_record(repo, plain_key) == plain
    assert await authenticate_record(repo, None) is None
    assert await authenticate_record(repo, ops_key[:-1] + "!") is None
    await repo.revoke(ops.key_id)
    assert await authenticate_record(repo, ops_key) is None


@pytest.mark.parametrize(
    ("role", "name"),
    [
        ("admin", None),
        ("", None),
        (OPERATOR_ROLE, ""),
        (OPERATOR_ROLE, "x" * 65),
        (OPERATOR_ROLE, "tab\there"),
    ],
)
async def test_bad_roles_and_names_are_refused(role: str, name: str | None) -> None:
    repo = MemoryKeys()
    with pytest.raises(InvalidKeyInput):
        await create_key(repo, "ops", role=role, name=name)
    assert repo.records == {}


async def test_issue_key_passes_role_and_name_through() -> None:
    repo = MemoryKeys()
    secrets = WebhookSecretStore(cast("AsyncDatabase[Doc]", MemoryMongo()))
    issued = await issue_key(repo, secrets, "ops", role=OPERATOR_ROLE, name="Ana")
    assert (issued.record.role, issued.record.name) == (OPERATOR_ROLE, "Ana")
    assert (await authenticate_record(repo, issued.key)) == issued.record


async def test_the_store_keeps_role_and_name_and_reads_old_records_as_tenant_keys() -> None:
    db = MemoryMongo()
    store = KeyStore(cast("AsyncDatabase[Doc]", db))
    record, _ = await create_key(store, "ops", role=OPERATOR_ROLE, name="Ana")
    assert await store.get(record.key_id) == record
    # A record from before roles: no role, no name.
    await db["api_keys"].insert_one(
        {
            "_id": "0123456789ab",
            "tenant_id": "acme",
            "key_hash": "h",
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
    )
    old = await store.get("0123456789ab")
    assert old is not None and (old.role, old.name, old.is_operator) == (TENANT_ROLE, None, False)
