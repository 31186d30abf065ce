"""``tapedeck keys`` against the real key store."""

from __future__ import annotations

import json

from services.common.mongo import connect, database
from services.common.settings import Settings
from services.submitter.keys import KeyStore, authenticate
from tests.integration.cli.command import tapedeck


async def test_keys_create_list_revoke(settings: Settings) -> None:
    code, out, err = await tapedeck(settings, "keys", "create", "--tenant", "acme", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"tenant", "key"} and created["tenant"] == "acme"
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
