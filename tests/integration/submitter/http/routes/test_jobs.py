"""POST /v1/jobs for the stage job kinds (clip, merge, audio) with an Idempotency-Key: a
client retrying a request (after a timeout, or a 5xx while Kafka was away) gets the job
its first request made, never a second one."""

from __future__ import annotations

from typing import Any

from schemas.codes import Code
from services.common.settings import Settings
from tests.integration.submitter.kit import Api, running_api

CLIP = {"job_kind": "clip", "episode_id": "ep-1", "start_ms": 0, "duration_ms": 1000}
MERGE = {
    "job_kind": "merge",
    "operation": "concat_video",
    "inputs": ["in/a.mp4", "in/b.mp4"],
    "output_key": "out/ab.mp4",
}


async def post(api: Api, spec: dict[str, Any], headers: dict[str, str], key: str) -> Any:
    return await api.client.post("/v1/jobs", json=spec, headers={**headers, "Idempotency-Key": key})


async def test_a_retried_stage_job_is_the_same_job(settings: Settings) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        for spec in (CLIP, MERGE):
            key = f"retry-{spec['job_kind']}"
            first = await post(api, spec, acme, key)
            again = await post(api, spec, acme, key)
            assert first.status_code == again.status_code == 202, (first.text, again.text)
            assert first.json()["job_id"] == again.json()["job_id"]
            # Without the key, or with another, a new job.
            other = await post(api, spec, acme, key + "-2")
            assert other.json()["job_id"] != first.json()["job_id"]


async def test_the_same_key_with_another_body_is_refused(settings: Settings) -> None:
    async with running_api(settings) as api:
        acme = await api.key_for("acme")
        assert (await post(api, CLIP, acme, "k")).status_code == 202
        changed = await post(api, {**CLIP, "start_ms": 1}, acme, "k")
        assert changed.status_code == 409, changed.text
        assert changed.json()["error"]["code"] == Code.IDEMPOTENCY_CONFLICT


async def test_keys_are_per_tenant(settings: Settings) -> None:
    async with running_api(settings) as api:
        acme, globex = await api.key_for("acme"), await api.key_for("globex")
        mine = await post(api, CLIP, acme, "shared")
        theirs = await post(api, CLIP, globex, "shared")
        assert mine.status_code == theirs.status_code == 202
        assert mine.json()["job_id"] != theirs.json()["job_id"]
