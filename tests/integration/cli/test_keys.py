"""``tapedeck keys`` against the real key store."""

from __future__ import annotations

import json

from services.common.mongo import connect, database
from services.common.settings import Settings
from services.submitter.keys import KeyStore, authenticate
from services.webhooks.secrets import WebhookSecretStore
from tests.integration.cli.command import tapedeck


async def test_keys_create_list_revoke(settings: Settings) -> None:
    code, out, err = await tapedeck(settings, "keys", "create", "--tenant", "acme", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"tenant", "key", "webhook_secret"} and created["tenant"] == "acme"
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

        code, out, _ = await tapedeck(settings, "keys", "revoke", stored.key_id)
        assert code == 0 and stored.key_id in out
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
