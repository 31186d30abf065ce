"""``/v1/merges`` against the real stack. The merger does not run here: ``fake_merger``
stands in for it, recording the stage as its runner would and producing the outcome on the
merge results topic, keyed by job id."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from schemas import TOPICS, ErrorInfo, decode_event, encode_event
from schemas.merge import MergeCompleted, MergeFailed, MergeRequested
from schemas.names import Producer, Stage
from services.common.job_store import JobStatusRecorder, JobStore
from services.common.mongo import connect, database
from services.common.settings import Settings
from tests.integration.submitter.kit import Api, make_tone, running_api
from tests.support.kafka import produce, read

MERGES = "/v1/merges"
Answer = Callable[[MergeRequested], MergeCompleted | MergeFailed]


def completed(event: MergeRequested) -> MergeCompleted:
    return MergeCompleted(
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.MERGER,
        s3_key=event.output_key,
        duration_ms=12_345,
        size_bytes=67_890,
        operation=event.operation,
        copied=True,
    )


def not_media(event: MergeRequested) -> MergeFailed:
    error = ErrorInfo(
        code="input_not_media",
        message="input 1 is not a readable media file",
        retryable=False,
        attempts=1,
    )
    return MergeFailed(
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.MERGER,
        error=error,
        operation=event.operation,
    )


@contextlib.asynccontextmanager
async def fake_merger(
    settings: Settings, answer: Answer, seen: list[MergeRequested]
) -> AsyncIterator[None]:
    consumer = AIOKafkaConsumer(
        TOPICS.merge_requests.full_name(settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    mongo = connect(settings)
    recorder = JobStatusRecorder(JobStore(database(mongo, settings)))
    results = TOPICS.merge_results.full_name(settings.topic_prefix)
    await consumer.start()

    stop = asyncio.Event()

    async def serve() -> None:
        # Polls rather than iterates, and is stopped rather than cancelled: a cancel that
        # lands inside a producer's stop() can leave it waiting forever.
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    event = decode_event(record.value or b"")
                    assert isinstance(event, MergeRequested)
                    seen.append(event)
                    await recorder.started(Stage.MERGE, event)
                    result = answer(event)
                    failed = isinstance(result, MergeFailed)
                    await recorder.finished(Stage.MERGE, event, [result], failed)
                    await produce(settings, results, [encode_event(result)],
                                  key=event.job_id.encode())  # fmt: skip

    task = asyncio.create_task(serve())
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await consumer.stop()
        await mongo.close()


async def _inputs(api: Api, tmp_path: Path, *keys: str) -> None:
    # Any object will do: the merger, which would look inside, is faked.
    tone = await make_tone(tmp_path / "tone.mp3", seconds=1.0)
    for key in keys:
        await api.runtime.media.upload_file(key, tone)


async def test_a_merge_that_ends_within_the_wait_answers_the_old_contract(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_api(settings, MERGE_WAIT_TIMEOUT_S=20) as api:
        acme = await api.key_for("acme")
        await _inputs(api, tmp_path, "ingest/acme/a.mp4", "media/acme/b.mp4")
        bucket, prefix = api.settings.s3_bucket, api.runtime.media.key_prefix
        request = {
            # The old Lambda took s3:// URIs; a plain key works too.
            "input_videos": [f"s3://{bucket}/{prefix}ingest/acme/a.mp4", "media/acme/b.mp4"],
            "output_key": "media/acme/out/joined.mp4",
            "output_bucket": bucket,
        }
        seen: list[MergeRequested] = []
        async with fake_merger(settings, completed, seen):
            r = await api.client.post(MERGES, headers=acme, json=request)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["s3_key"], body["duration"], body["size"]) == (
            "media/acme/out/joined.mp4",
            12.345,
            67_890,
        )
        assert (body["duration_ms"], body["size_bytes"], body["copied"]) == (12_345, 67_890, True)
        assert body["job_id"].startswith("job-") and body["url"].startswith("http")

        [event] = seen
        assert (event.job_id, event.tenant_id, event.producer) == (
            body["job_id"],
            "acme",
            "submitter",
        )
        assert event.operation == "concat_video" and event.step is None
        assert event.inputs == ["ingest/acme/a.mp4", "media/acme/b.mp4"]
        assert event.output_key == "media/acme/out/joined.mp4"

        status = await api.client.get(f"{MERGES}/{body['job_id']}", headers=acme)
        assert status.status_code == 200, status.text
        assert status.json()["status"] == "COMPLETED" and status.json()["progress"] == 100
        assert (status.json()["s3_key"], status.json()["size"]) == (body["s3_key"], 67_890)
        # It is a job like any other.
        job = await api.client.get(f"/v1/jobs/{body['job_id']}", headers=acme)
        assert job.status_code == 200 and job.json()["kind"] == "merge"
        assert job.json()["status"] == "COMPLETED"
        # ... of this tenant only.
        other = await api.key_for("other")
        assert (
            await api.client.get(f"{MERGES}/{body['job_id']}", headers=other)
        ).status_code == 404
        assert len(api.runtime.waiter) == 0


async def test_a_failed_merge_answers_with_the_mergers_code(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_api(settings, MERGE_WAIT_TIMEOUT_S=20) as api:
        acme = await api.key_for("acme")
        await _inputs(api, tmp_path, "ingest/acme/a.mp4", "ingest/acme/b.mp4")
        request = {
            "input_videos": ["ingest/acme/a.mp4", "ingest/acme/b.mp4"],
            "output_key": "ingest/acme/joined.MOV",
        }
        async with fake_merger(settings, not_media, []):
            r = await api.client.post(MERGES, headers=acme, json=request)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "input_not_media" and error["request_id"].startswith("job-")
        status = await api.client.get(f"{MERGES}/{error['request_id']}", headers=acme)
        assert status.json()["status"] == "FAILED"
        assert status.json()["error"]["code"] == "input_not_media"


async def test_no_answer_within_the_wait_is_202_with_the_job_to_poll(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_api(settings, MERGE_WAIT_TIMEOUT_S=0.3) as api:
        acme = await api.key_for("acme")
        await _inputs(api, tmp_path, "ingest/acme/a.mp4", "ingest/acme/b.mp4")
        request = {
            "input_videos": ["ingest/acme/a.mp4", "ingest/acme/b.mp4"],
            "output_key": "ingest/acme/joined.mkv",
        }
        r = await api.client.post(MERGES, headers=acme, json=request)
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["status"] == "PENDING" and body["job_id"].startswith("job-")
        assert r.headers["location"] == body["status_url"]
        assert body["status_url"].endswith(f"{MERGES}/{body['job_id']}")

        status = await api.client.get(body["status_url"], headers=acme)
        assert status.status_code == 200
        assert status.json() == {"job_id": body["job_id"], "status": "PENDING", "progress": 0}

        records = await read(settings, TOPICS.merge_requests.full_name(settings.topic_prefix), 1)
        assert [rec.key for rec in records] == [body["job_id"].encode()]
        event = decode_event(records[0].value or b"")
        assert isinstance(event, MergeRequested) and event.job_id == body["job_id"]

        # The merge goes on; once the merger has answered, the status has the result.
        recorder = JobStatusRecorder(api.runtime.jobs)
        await recorder.finished(Stage.MERGE, event, [completed(event)], False)
        done = (await api.client.get(body["status_url"], headers=acme)).json()
        assert done["status"] == "COMPLETED" and done["s3_key"] == "ingest/acme/joined.mkv"
        assert (done["duration"], done["size"]) == (12.345, 67_890)
        assert len(api.runtime.waiter) == 0


async def test_keys_outside_the_tenants_prefixes_are_refused(
    settings: Settings, tmp_path: Path
) -> None:
    async with running_api(settings, MERGE_WAIT_TIMEOUT_S=0.3) as api:
        acme = await api.key_for("acme")
        await _inputs(api, tmp_path, "ingest/acme/a.mp4", "ingest/other/b.mp4")
        ok = ["ingest/acme/a.mp4"]
        forbidden = [
            {"input_videos": ["ingest/other/b.mp4"], "output_key": "ingest/acme/x.mp4"},
            {"input_videos": ["episodes/acme/ep/a.mp3"], "output_key": "ingest/acme/x.mp4"},
            {"input_videos": ok, "output_key": "ingest/acme2/x.mp4"},
            {"input_videos": ok, "output_key": "renders/x.mp4"},
            {
                "input_videos": ["s3://someone-elses/ingest/acme/a.mp4"],
                "output_key": "ingest/acme/x.mp4",
            },
            {"input_videos": ok, "output_key": "ingest/acme/x.mp4", "output_bucket": "elsewhere"},
        ]
        for body in forbidden:
            r = await api.client.post(MERGES, headers=acme, json=body)
            assert r.status_code == 403, (body, r.text)
            assert r.json()["error"]["code"] == "forbidden_s3_key", body

        r = await api.client.post(
            MERGES,
            headers=acme,
            json={"input_videos": [*ok, "ingest/acme/nope.mp4"], "output_key": "ingest/acme/x.mp4"},
        )
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "input_missing"
        assert r.json()["error"]["message"] == "input_videos[1]: no such object"

        invalid: list[dict[str, Any]] = [
            {"input_videos": [], "output_key": "ingest/acme/x.mp4"},
            {"input_videos": ok, "output_key": "ingest/acme/x.mp3"},
            {"input_videos": ok, "output_key": "ingest/acme/../x.mp4"},
            {"input_videos": ["/ingest/acme/a.mp4"], "output_key": "ingest/acme/x.mp4"},
            {"input_videos": ok},
            {"input_videos": ok, "output_key": "ingest/acme/x.mp4", "extra": 1},
        ]
        for invalid_body in invalid:
            r = await api.client.post(MERGES, headers=acme, json=invalid_body)
            assert r.status_code == 422, (invalid_body, r.text)
        r = await api.client.post(
            MERGES, headers={**acme, "content-type": "application/json"}, content=b"\xea\x15"
        )
        assert r.status_code == 422, r.text

        assert (await api.client.post(MERGES, json={"input_videos": ok})).status_code == 401
        assert (await api.client.get(f"{MERGES}/job-nope", headers=acme)).status_code == 404
        # Nothing reached the merger.
        records = await read(
            settings, TOPICS.merge_requests.full_name(settings.topic_prefix), 1, timeout_s=1
        )
        assert records == []
