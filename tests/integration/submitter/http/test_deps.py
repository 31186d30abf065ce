"""Authentication against the real key store: only live keys get past it."""

from __future__ import annotations

from services.common.settings import Settings
from tests.integration.submitter.kit import running_api


async def test_requests_without_a_valid_key_are_refused(settings: Settings) -> None:
    async with running_api(settings) as api:
        good = await api.key_for("acme")
        key = good["Authorization"].removeprefix("Bearer ")
        tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
        refused = [
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": f"Bearer {tampered}"},
            {"X-API-Key": tampered},
            {"Authorization": f"Basic {key}"},
        ]
        for headers in refused:
            r = await api.client.get("/v1/episodes/ep-1", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.json()["error"]["message"]
            assert key not in r.text

        # Accepted either way: past auth, the unknown episode is a 404.
        for headers in (good, {"X-API-Key": key}):
            r = await api.client.get("/v1/episodes/ep-1", headers=headers)
            assert r.status_code == 404, r.text

        key_id = key.split("_")[1]
        assert await api.runtime.keys.revoke(key_id)
        r = await api.client.get("/v1/episodes/ep-1", headers=good)
        assert r.status_code == 401
