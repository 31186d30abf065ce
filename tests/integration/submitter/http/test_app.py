"""The app against the real stack: its OpenAPI document and health."""

from __future__ import annotations

from services.common.settings import Settings
from tests.integration.submitter.kit import running_api


async def test_openapi_and_health(settings: Settings) -> None:
    async with running_api(settings) as api:
        spec = (await api.client.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.1")
        assert {"/v1/episodes", "/api/v1/audio_clips/{episode_id}", "/healthz"} <= set(
            spec["paths"]
        )
        body = spec["paths"]["/v1/episodes"]["post"]["requestBody"]["content"]
        assert {"multipart/form-data", "application/json"} <= set(body)

        ready = await api.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ok",
            "checks": {"mongo": "ok", "kafka": "ok", "s3": "ok"},
        }
        alive = await api.client.get("/healthz")
        assert alive.status_code == 200 and alive.json() == {"status": "ok", "checks": {}}
