"""``tapedeck keys`` against the real key store."""

from __future__ import annotations

import json

from services.common.mongo import connect, database
from services.common.settings import Settings
from services.submitter.keys import KeyStore, authenticate, authenticate_record
from services.webhooks.secrets import WebhookSecretStore
from tests.integration.cli.command import tapedeck


async def test_keys_create_list_revoke(settings: Settings) -> None:
    code, out, err = await tapedeck(settings, "keys", "create", "--tenant", "acme", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"tenant", "key", "role", "name", "webhook_secret"}
    assert (created["tenant"], created["role"], created["name"]) == ("acme", "tenant", None)
    key = created["key"]

    mongo = connect(settings)
    try:
        store = KeyStore(database(mongo, settings))
        assert await authenticate(store, key) == "acme"
        [stored] = await store.list("acme")
        raw = await database(mongo, settings)["api_keys"].find_one({"_id": stored.key_id})
        assert raw is not None and key not in str(raw)

        code, out, _ = await tapedeck(settings, "keys", "list", "--tenant", "acme", "--json")
        assert code == 0
        [row] = json.loads(out)
        assert row["key_id"] == stored.key_id and row["revoked_at"] is None
        assert key not in out

        code, out, _ = await tapedeck(settings, "keys", "revoke", stored.key_id, "--json")
        assert code == 0 and json.loads(out) == {"key_id": stored.key_id, "revoked": True}
        assert await authenticate(store, key) is None
        code, _, err = await tapedeck(settings, "keys", "revoke", stored.key_id)
        assert code == 1 and "no live key" in err
    finally:
        await mongo.close()

    code, _, err = await tapedeck(settings, "keys", "create", "--tenant", "../evil")
    assert code == 2 and "tenant" in err
    code, _, _ = await tapedeck(settings, "keys", "create")
    assert code == 2  # argparse: --tenant is required


async def test_the_webhook_secret_is_shown_with_the_first_key_and_on_rotation(
    settings: Settings,
) -> None:
    code, _, err = await tapedeck(settings, "keys", "rotate-webhook-secret", "--tenant", "acme")
    assert code == 2 and "no API keys" in err

    code, out, err = await tapedeck(settings, "keys", "create", "--tenant", "acme")
    assert code == 0, err
    [key] = out.split()  # stdout holds the key alone, for KEY=$(...)
    assert key.startswith("td_")
    first = err.rsplit(": ", 1)[1].strip()
    assert first.startswith("whsec_") and "shown only now" in err

    code, out, err = await tapedeck(settings, "keys", "create", "--tenant", "acme", "--json")
    assert code == 0 and "webhook_secret" not in json.loads(out) and "whsec_" not in err

    code, out, err = await tapedeck(
        settings, "keys", "rotate-webhook-secret", "--tenant", "acme", "--json"
    )
    assert code == 0, err
    rotated = json.loads(out)
    assert rotated["tenant"] == "acme" and rotated["previous_expires_at"]
    assert rotated["webhook_secret"].startswith("whsec_")

    mongo = connect(settings)
    try:
        live = await WebhookSecretStore(database(mongo, settings)).signing_secrets("acme")
        assert live == [rotated["webhook_secret"], first]
    finally:
        await mongo.close()


async def test_operator_keys_are_named_and_carry_no_webhook_secret(settings: Settings) -> None:
    code, out, err = await tapedeck(
        settings, "keys", "create", "--operator", "--name", "Alice Ops", "--json"
    )
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"tenant", "key", "role", "name"}
    assert (created["role"], created["name"], created["tenant"]) == (
        "operator",
        "Alice Ops",
        "operators",
    )

    mongo = connect(settings)
    try:
        store = KeyStore(database(mongo, settings))
        record = await authenticate_record(store, created["key"])
        assert record is not None and record.is_operator and record.name == "Alice Ops"
        no_secret = await WebhookSecretStore(database(mongo, settings)).signing_secrets("operators")
        assert no_secret == []
    finally:
        await mongo.close()

    code, out, err = await tapedeck(settings, "keys", "list", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["role"], row["name"], row["tenant"]) == ("operator", "Alice Ops", "operators")
    code, out, _ = await tapedeck(settings, "keys", "list")
    assert code == 0 and "operator" in out and "Alice Ops" in out and created["key"] not in out

    code, _, err = await tapedeck(settings, "keys", "create", "--operator", "--name", " ")
    assert code == 2 and err.startswith("tapedeck: name must be 1-")
