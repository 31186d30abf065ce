"""``get_operator``: no key 401, a tenant's key 403, an operator's key names the actor."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.ops.actions import Actor
from services.submitter.http.app import create_api
from services.submitter.http.deps import OperatorDep, get_keys
from services.submitter.keys import OPERATOR_ROLE, create_key
from services.submitter.settings import SubmitterSettings
from tests.support.fakes import MemoryKeys


def app_with(keys: MemoryKeys) -> FastAPI:
    # No lifespan runs: the key store is the in-memory one.
    app = create_api(SubmitterSettings())
    app.dependency_overrides[get_keys] = lambda: keys

    @app.get("/probe")
    async def probe(actor: OperatorDep) -> dict[str, str]:
        return {"key_id": actor.key_id, "name": actor.name}

    return app


async def test_only_operator_keys_pass() -> None:
    keys = MemoryKeys()
    _, tenant_key = await create_key(keys, "acme")
    record, operator_key = await create_key(keys, "ops", role=OPERATOR_ROLE, name="Ana")
    _, nameless_key = await create_key(keys, "ops", role=OPERATOR_ROLE)
    transport = httpx.ASGITransport(app_with(keys))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/probe")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        r = await client.get("/probe", headers={"Authorization": "Bearer td_nope"})
        assert r.status_code == 401
        r = await client.get("/probe", headers={"Authorization": f"Bearer {tenant_key}"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert tenant_key not in r.text
        r = await client.get("/probe", headers={"X-API-Key": operator_key})
        assert r.status_code == 200 and r.json() == {"key_id": record.key_id, "name": "Ana"}
        r = await client.get("/probe", headers={"Authorization": f"Bearer {nameless_key}"})
        assert r.status_code == 200 and r.json()["name"] == ""


def test_an_actor_is_shown_by_name_and_key_id() -> None:
    assert Actor("0123456789ab", "Ana").label == "Ana (0123456789ab)"
    assert Actor("0123456789ab", "").label == "0123456789ab"
