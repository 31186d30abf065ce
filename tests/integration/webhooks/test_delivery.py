"""The webhook service on the real stack, with a receiver on loopback: outcomes arrive
once, signed with the tenant's secrets; a failing receiver is retried and every attempt
is on the job; refused URLs get no request at all; stage outcomes reach only the jobs
that ask for them."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas import TOPICS, ErrorInfo, JobEvent
from schemas.audio import AudioRendered, AudioSegment
from schemas.job import JobCompleted, JobFailed
from schemas.merge import MergeCompleted
from services.common.kafka import ensure_topics
from services.common.mongo import Doc, connect, database
from services.common.settings import Settings
from services.webhooks.app import build_app
from services.webhooks.plan import DELIVERED, REFUSED, body, message_id, stage_body
from services.webhooks.secrets import WebhookSecretStore, generate_secret
from services.webhooks.settings import WebhookSettings
from services.webhooks.signing import WebhookVerificationError, verify
from services.webhooks.store import DELIVERIES
from tests.support.contract.server import serve
from tests.support.kafka import produce, read


@dataclass(frozen=True)
class Call:
    headers: dict[str, str]
    body: bytes
    verified: bool


class Receiver:
    """Records every POST to ``/hook/{name}``, checks its signature with the secrets it
    is told, and answers from a per-name script of statuses (then 200)."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.calls: dict[str, list[Call]] = defaultdict(list)
        self.script: dict[str, list[int]] = defaultdict(list)
        self.app = Starlette(routes=[Route("/hook/{name}", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        raw = await request.body()
        try:
            verify(self.secrets, request.headers, raw)
            verified = True
        except WebhookVerificationError:
            verified = False
        name = request.path_params["name"]
        self.calls[name].append(Call(dict(request.headers), raw, verified))
        script = self.script[name]
        return Response(status_code=script.pop(0) if script else 200)


def webhook_settings(settings: Settings, *, allow_private: bool) -> WebhookSettings:
    # Short retries and sweeps so a test takes seconds; http to reach a loopback receiver.
    return WebhookSettings.model_construct(
        **settings.model_dump(), webhook_allow_http=True, webhook_allow_private=allow_private,
        webhook_retry_delays_s="0.5", webhook_sweep_s=0.2, webhook_web_port=None,
    )  # fmt: skip


def completed(job_id: str) -> JobCompleted:
    return JobCompleted(job_id=job_id, tenant_id="acme", producer="lifecycle",
                        job_kind="production", outputs={"result": f"renders/{job_id}/r.mp4"},
                        audio_status="COMPLETED")  # fmt: skip


async def add_jobs(db: Any, urls: dict[str, str | None], *, stages: bool | None = None) -> None:
    for job_id, url in urls.items():
        doc: Doc = {"_id": job_id, "job_id": job_id, "tenant_id": "acme", "kind": "production",
                    "status": "COMPLETED", "created_at": datetime.now(UTC)}  # fmt: skip
        if url is not None:
            doc["callback_url"] = url
        if stages is not None:
            doc["spec"] = {"prompt": "p", "video": {"source": "upstream"},
                           "duration_seconds": 4.0, "callback_url": url,
                           "callback_stages": stages}  # fmt: skip
        await db["jobs"].insert_one(doc)


async def send_to(settings: Settings, events: list[JobEvent]) -> None:
    for event in events:
        topic = TOPICS.for_event(event.event_type).full_name(settings.topic_prefix)
        await produce(
            settings, topic, [event.model_dump_json().encode()], key=event.job_id.encode()
        )


async def wait_until(check: Callable[[], Any], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the deliveries")
        await asyncio.sleep(0.2)


async def test_outcomes_are_delivered_signed_once_and_retried(settings: Settings) -> None:
    await ensure_topics(settings)
    mongo = connect(settings)
    db = database(mongo, settings)
    store = WebhookSecretStore(db)
    old = await store.create_if_missing("acme")
    assert old is not None
    new = (await store.rotate("acme")).secret  # both sign during the grace period
    receiver = Receiver()
    receiver.secrets = [new]
    receiver.script["flaky"] = [500, 500]

    ok, flaky, quiet = completed("job-ok"), completed("job-flaky"), completed("job-quiet")
    error = ErrorInfo(code="video_failed", message="the video failed", retryable=False,
                      attempts=1)  # fmt: skip
    failed = JobFailed(job_id="job-failed", tenant_id="acme", producer="lifecycle",
                       job_kind="production", error=error)  # fmt: skip
    app = build_app(webhook_settings(settings, allow_private=True))
    try:
        async with serve(receiver.app) as base:
            hooks = {name: f"{base}/hook/{name}" for name in ("ok", "flaky", "failed")}
            await add_jobs(db, {f"job-{name}": url for name, url in hooks.items()})
            await add_jobs(db, {"job-quiet": None})
            await app.start()
            # The ok outcome twice, as a redelivery or the lifecycle's outbox relay would.
            await send_to(settings, [ok, flaky, failed, quiet, ok])

            async def all_delivered() -> bool:
                states = [d["state"] async for d in db[DELIVERIES].find({})]
                return len(states) == 3 and set(states) == {DELIVERED}

            await wait_until(all_delivered)
            await asyncio.sleep(1.0)  # room for any extra call to show up
    finally:
        await app.stop()

    assert set(receiver.calls) == {"ok", "flaky", "failed"}
    [call] = receiver.calls["ok"]
    assert call.verified and call.body == body(ok)
    headers = call.headers
    assert headers["webhook-id"] == message_id(ok)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 120
    assert headers["content-type"] == "application/json"
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (new, old):
        verify(secret, headers, call.body)
    with pytest.raises(WebhookVerificationError):
        verify(generate_secret(), headers, call.body)
    [failure] = receiver.calls["failed"]
    assert failure.verified and failure.body == body(failed)

    flaky_calls = receiver.calls["flaky"]
    assert len(flaky_calls) == 3 and all(c.verified for c in flaky_calls)
    assert {c.headers["webhook-id"] for c in flaky_calls} == {message_id(flaky)}
    job = await db["jobs"].find_one({"_id": "job-flaky"})
    assert job is not None
    history = job["webhooks"]
    assert [h["status"] for h in history] == [500, 500, 200]
    assert [h["outcome"] for h in history] == ["retrying", "retrying", "delivered"]
    assert [h["attempt"] for h in history] == [1, 2, 3]
    assert all(isinstance(h["duration_ms"], int) and h["duration_ms"] >= 0 for h in history)
    assert all(h["msg_id"] == message_id(flaky) for h in history)
    assert history[1]["at"] > history[0]["at"]
    delivery = await db[DELIVERIES].find_one({"_id": message_id(flaky)})
    assert delivery is not None and delivery["attempts"] == 3
    assert [h["status"] for h in delivery["history"]] == [500, 500, 200]
    # What was stored holds neither a secret nor a signature.
    stored = repr(delivery) + repr(job)
    assert all(s not in stored for s in (new, old, *signatures))

    quiet_job = await db["jobs"].find_one({"_id": "job-quiet"})
    assert quiet_job is not None and "webhooks" not in quiet_job
    await mongo.close()


async def test_refused_urls_get_no_request_and_malformed_records_are_dead_lettered(
    settings: Settings,
) -> None:
    await ensure_topics(settings)
    mongo = connect(settings)
    db = database(mongo, settings)
    await WebhookSecretStore(db).create_if_missing("acme")
    receiver = Receiver()
    app = build_app(webhook_settings(settings, allow_private=False))
    jobs = ("job-metadata", "job-private", "job-loopback")
    try:
        async with serve(receiver.app) as base:
            await add_jobs(db, {"job-metadata": "http://169.254.169.254/latest/meta-data/",
                                "job-private": "http://10.20.30.40/hook",
                                "job-loopback": f"{base}/hook/loopback"})  # fmt: skip
            await app.start()
            await send_to(settings, [completed(j) for j in jobs])
            topic = TOPICS.jobs_results.full_name(settings.topic_prefix)
            await produce(settings, topic, [b"not even json"])

            async def all_refused() -> bool:
                states = [d["state"] async for d in db[DELIVERIES].find({})]
                return len(states) == 3 and set(states) == {REFUSED}

            await wait_until(all_refused)
            await asyncio.sleep(1.0)
    finally:
        await app.stop()

    dead = await read(settings, TOPICS.jobs_results.dlq_name(settings.topic_prefix), 1)
    assert [(r.value, dict(r.headers)["stage"]) for r in dead] == [(b"not even json", b"webhooks")]
    assert receiver.calls == {}
    for job_id in jobs:
        job = await db["jobs"].find_one({"_id": job_id})
        assert job is not None
        [entry] = job["webhooks"]
        assert entry["outcome"] == "refused" and "status" not in entry
        assert entry["reason"].startswith("callback_url resolves to a"), entry
        delivery = await db[DELIVERIES].find_one({"job_id": job_id})
        assert delivery is not None and delivery["reason"] == entry["reason"]
    await mongo.close()


def audio_rendered(job_id: str) -> AudioRendered:
    segment = AudioSegment(scene_index=0, s3_key=f"audio/{job_id}/0.mp3", duration_s=4.0,
                           provider="local", cached=False, silent_fallback=False)  # fmt: skip
    return AudioRendered(job_id=job_id, tenant_id="acme", producer="audio-agent",
                         segments=[segment])  # fmt: skip


async def test_stage_outcomes_reach_only_jobs_that_ask(settings: Settings) -> None:
    await ensure_topics(settings)
    mongo = connect(settings)
    db = database(mongo, settings)
    secret = await WebhookSecretStore(db).create_if_missing("acme")
    assert secret is not None
    receiver = Receiver()
    receiver.secrets = [secret]
    audio = audio_rendered("job-stages")
    merged = MergeCompleted(job_id="job-stages", tenant_id="acme", producer="merger",
                            s3_key="renders/job-stages/concat.mp4", duration_ms=4000,
                            size_bytes=1000, operation="concat_video",
                            step="concat")  # fmt: skip
    declined = audio_rendered("job-declined")
    app = build_app(webhook_settings(settings, allow_private=True))
    try:
        async with serve(receiver.app) as base:
            await add_jobs(db, {"job-stages": f"{base}/hook/stages"}, stages=True)
            await add_jobs(db, {"job-declined": f"{base}/hook/declined"}, stages=False)
            await app.start()
            # The audio outcome twice, as a redelivery would.
            await send_to(settings, [declined, audio, merged, audio])

            async def both_delivered() -> bool:
                states = [d["state"] async for d in db[DELIVERIES].find({})]
                return len(states) == 2 and set(states) == {DELIVERED}

            await wait_until(both_delivered)
            await asyncio.sleep(1.0)  # room for any extra call to show up
    finally:
        await app.stop()

    assert set(receiver.calls) == {"stages"}
    calls = receiver.calls["stages"]
    assert len(calls) == 2 and all(c.verified for c in calls)
    by_id = {c.headers["webhook-id"]: c for c in calls}
    assert set(by_id) == {message_id(audio), message_id(merged)}
    assert by_id[message_id(audio)].body == stage_body(audio)
    assert by_id[message_id(merged)].body == stage_body(merged)
    for call in calls:
        verify(secret, call.headers, call.body)
    job = await db["jobs"].find_one({"_id": "job-stages"})
    assert job is not None
    assert sorted(h["type"] for h in job["webhooks"]) == ["stage.completed"] * 2
    assert all(h["outcome"] == "delivered" for h in job["webhooks"])
    declined_job = await db["jobs"].find_one({"_id": "job-declined"})
    assert declined_job is not None and "webhooks" not in declined_job
    await mongo.close()
