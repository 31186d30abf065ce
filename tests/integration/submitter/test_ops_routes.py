"""The operator API against the real stack: operator keys only, every tenant's jobs, the
dead letters, the pipeline and the topics."""

from __future__ import annotations

from schemas import TOPICS
from services.common.codec import RawMessage, dead_letter_headers
from services.common.kafka import KafkaEmitter
from services.common.settings import Settings
from services.submitter.keys import OPERATOR_ROLE, create_key
from tests.integration.submitter.kit import Api, running_api

CLIP_JOB = {"job_kind": "clip", "episode_id": "ep-1", "start_ms": 0, "duration_ms": 1000}


async def operator_headers(api: Api, name: str = "night-shift") -> dict[str, str]:
    _, key = await create_key(api.runtime.keys, "ops", role=OPERATOR_ROLE, name=name)
    return {"Authorization": f"Bearer {key}"}


async def submit(api: Api, headers: dict[str, str]) -> str:
    r = await api.client.post("/v1/jobs", json=CLIP_JOB, headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


async def test_only_operator_keys_get_in(settings: Settings) -> None:
    async with running_api(settings) as api:
        tenant = await api.key_for("acme")
        operator = await operator_headers(api)
        job_id = await submit(api, tenant)
        reads = [
            "/v1/ops/jobs",
            f"/v1/ops/jobs/{job_id}",
            "/v1/ops/dlq",
            "/v1/ops/pipeline",
            "/v1/ops/topics",
        ]
        for path in reads:
            r = await api.client.get(path)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", path
            r = await api.client.get(path, headers=tenant)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", path
            r = await api.client.get(path, headers=operator)
            assert r.status_code == 200, (path, r.text)
        for path in (f"/v1/ops/jobs/{job_id}/cancel", f"/v1/ops/jobs/{job_id}/retry"):
            r = await api.client.post(path, headers=tenant)
            assert r.status_code == 403, path
        # The tenant's job was not touched by the refused cancel.
        mine = await api.client.get(f"/v1/jobs/{job_id}", headers=tenant)
        assert mine.json()["status"] != "CANCELLED"

        key_id = operator["Authorization"].split("_")[1]
        assert await api.runtime.keys.revoke(key_id)
        r = await api.client.get("/v1/ops/jobs", headers=operator)
        assert r.status_code == 401


async def test_operators_see_and_act_on_every_tenants_jobs(settings: Settings) -> None:
    async with running_api(settings) as api:
        acme, globex = await api.key_for("acme"), await api.key_for("globex")
        operator = await operator_headers(api)
        mine, theirs = await submit(api, acme), await submit(api, globex)
        assert (await api.client.get(f"/v1/jobs/{theirs}", headers=acme)).status_code == 404

        listed = (await api.client.get("/v1/ops/jobs", headers=operator)).json()
        tenants = {j["job_id"]: j["tenant_id"] for j in listed["jobs"]}
        assert tenants == {mine: "acme", theirs: "globex"}
        only = (await api.client.get("/v1/ops/jobs?tenant=globex", headers=operator)).json()
        assert [j["job_id"] for j in only["jobs"]] == [theirs]
        page = (await api.client.get("/v1/ops/jobs?limit=1", headers=operator)).json()
        assert len(page["jobs"]) == 1 and page["next_cursor"]
        rest = await api.client.get(
            f"/v1/ops/jobs?limit=1&cursor={page['next_cursor']}", headers=operator
        )
        assert {page["jobs"][0]["job_id"], rest.json()["jobs"][0]["job_id"]} == {mine, theirs}

        detail = (await api.client.get(f"/v1/ops/jobs/{theirs}", headers=operator)).json()
        assert detail["tenant_id"] == "globex" and detail["kind"] == "clip"
        assert [s["name"] for s in detail["stages"]] == ["clip"]
        assert detail["timeline"][0]["name"] == "job submitted"
        assert detail["cancellable"] is True and detail["retryable_stages"] == []

        r = await api.client.post(f"/v1/ops/jobs/{theirs}/retry?stage=video", headers=operator)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        r = await api.client.post(f"/v1/ops/jobs/{theirs}/retry?stage=audio", headers=operator)
        assert r.status_code == 409 and r.json()["error"]["code"] == "job_finished"

        r = await api.client.post(f"/v1/ops/jobs/{theirs}/cancel", headers=operator)
        assert r.status_code == 200, r.text
        cancelled = r.json()
        assert cancelled["status"] == "CANCELLED" and cancelled["cancellable"] is False
        [action] = cancelled["actions"]
        assert action["action"] == "cancel" and "night-shift" in action["actor"]
        assert any(e["name"] == "operator cancel" for e in cancelled["timeline"])
        # The tenant sees its job cancelled through its own API.
        seen = await api.client.get(f"/v1/jobs/{theirs}", headers=globex)
        assert seen.json()["status"] == "CANCELLED"

        r = await api.client.get("/v1/ops/jobs/no-such-job", headers=operator)
        assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
        r = await api.client.post("/v1/ops/jobs/no-such-job/cancel", headers=operator)
        assert r.status_code == 404


async def test_dead_letters_pipeline_and_topics(settings: Settings) -> None:
    async with running_api(settings) as api:
        operator = await operator_headers(api)
        original = TOPICS.merge_requests.full_name(settings.topic_prefix)
        dlq = TOPICS.merge_requests.dlq_name(settings.topic_prefix)
        msg = RawMessage(original, b"{not json", b"job-9", partition=1, offset=3)
        headers = dead_letter_headers(msg, error="not valid JSON", stage="merge", exception="E")
        async with KafkaEmitter(settings, "tests-stage") as emitter:
            await emitter.dead_letter(msg, headers)

        topics = (await api.client.get("/v1/ops/dlq", headers=operator)).json()["topics"]
        counts = {t["name"]: (t["messages"], t["pending"]) for t in topics}
        assert counts[dlq] == (1, 1)
        r = await api.client.get("/v1/ops/dlq/tapedeck.nope.dlq", headers=operator)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

        listed = (await api.client.get(f"/v1/ops/dlq/{dlq}", headers=operator)).json()
        [letter] = listed["dead_letters"]
        assert (letter["key"], letter["error"], letter["stage"]) == (
            "job-9",
            "not valid JSON",
            "merge",
        )
        assert letter["original_topic"] == original and letter["state"] == "pending"
        where = f"/v1/ops/dlq/{dlq}/{letter['partition']}/{letter['offset']}"
        one = (await api.client.get(where, headers=operator)).json()
        assert one["value"] == "{not json" and one["headers"]["original_offset"] == "3"
        r = await api.client.get(f"/v1/ops/dlq/{dlq}/{letter['partition']}/99", headers=operator)
        assert r.status_code == 404

        r = await api.client.post(f"{where}/replay", json={"value": "{}"}, headers=operator)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_replay"
        assert "not valid" in r.json()["error"]["message"]
        r = await api.client.post(f"{where}/discard", headers=operator)
        assert r.status_code == 200 and r.json()["state"] == "discarded"
        assert r.json()["actions"][0]["action"] == "discarded"
        r = await api.client.post(f"{where}/replay", headers=operator)
        assert r.status_code == 409 and r.json()["error"]["code"] == "dead_letter_settled"

        stats = (await api.client.get("/v1/ops/pipeline?window_s=600", headers=operator)).json()
        assert stats["window_s"] == 600 and stats["lag_error"] is None
        assert {"lifecycle", "webhooks"} <= {s["stage"] for s in stats["stages"]}
        r = await api.client.get("/v1/ops/pipeline?window_s=1", headers=operator)
        assert r.status_code == 422

        described = (await api.client.get("/v1/ops/topics", headers=operator)).json()["topics"]
        by_name = {t["name"]: t for t in described}
        assert original in by_name and dlq in by_name
        assert sum(p["latest"] for p in by_name[dlq]["partitions"]) == 1
