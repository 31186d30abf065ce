"""One production job through the real services with JSON logs: the trace the client
started follows the job through every event on the topics, every service's log lines
about it and the webhook call; no credential reaches a log line or an event."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas import TOPICS
from schemas.names import parent_job_id
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.obs import trace
from services.common.settings import Settings
from tests.e2e.test_production_e2e import make_video, tapedeck
from tests.support.contract.fal import FalContract
from tests.support.contract.server import serve
from tests.support.services import running

MODULES = (
    "services.submitter",
    "services.lifecycle",
    "services.audio_agent",
    "services.merger",
    "services.webhooks",
)
# The stages a production job with music goes through, each a service of its own.
JOB_TOPICS = {TOPICS.jobs_requests, TOPICS.audio_jobs, TOPICS.audio_results,
              TOPICS.merge_requests, TOPICS.merge_results, TOPICS.jobs_results}  # fmt: skip


class Receiver:
    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.calls.append({k.lower(): v for k, v in request.headers.items()})
        return Response(status_code=204)


def fake(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(16)}"


async def everything_on(settings: Settings) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the test's topics (its prefix), read until none came for 2 s."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(*mine, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                group_id=None)  # fmt: skip
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        quiet_since, deadline = time.monotonic(), time.monotonic() + 30
        while time.monotonic() - quiet_since < 2 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return out


def job_of(record: ConsumerRecord[bytes, bytes]) -> str | None:
    try:
        doc = json.loads(record.value or b"")
    except ValueError:
        return None
    job_id = doc.get("job_id") if isinstance(doc, dict) else None
    return parent_job_id(job_id) if isinstance(job_id, str) else None


def log_lines(logdir: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(logdir.glob("services.*.log")):
        for line in path.read_text(errors="replace").splitlines():
            yield path.name, line


async def test_one_trace_follows_a_job_and_no_secret_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    fal_key = fake("fal-id:")
    contract, receiver = FalContract(key=fal_key), Receiver()
    keys = tapedeck(settings, "keys", "create", "--tenant", "acme")
    api_key, webhook_secret = keys["key"], keys["webhook_secret"]
    provider_keys = {"FAL_KEY": fal_key, "REPLICATE_API_TOKEN": fake("r8_"),
                     "ELEVENLABS_API_KEY": fake("sk_")}  # fmt: skip
    video = make_video(tmp_path / "s0.mp4", 0)
    async with MediaStore.from_settings(settings) as media:
        await media.upload_file("ingest/acme/s0.mp4", video)

    client_span = trace.start(None)
    headers = {"Authorization": f"Bearer {api_key}", "traceparent": client_span.header()}
    async with serve(contract.app) as fal_url, serve(receiver.app) as hook_url:
        env = {
            **provider_keys,
            "LOG_FORMAT": "json",
            "FAL_QUEUE_URL": fal_url,
            "AUDIO_TIER_MAP": '{"standard": {"music": "fal:cassetteai/music-generator"}}',
            "PROVIDER_POLL_MIN_S": "0.05",
            "PROVIDER_POLL_MAX_S": "0.2",
            "WEBHOOK_ALLOW_HTTP": "true",
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "WEBHOOK_SWEEP_S": "0.5",
            "TMPDIR": str(tmp_path),
        }
        with running(settings, tmp_path, MODULES, **env) as base:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
                spec = {
                    "job_kind": "production",
                    "prompt": "a calm sea",
                    "scenes": [
                        {
                            "prompt": "waves",
                            "duration_s": 2,
                            "video": "ingest/acme/s0.mp4",
                            "text": "Hello.",
                        }
                    ],
                    # Music from the provider, a voiceover (its own audio job) from espeak.
                    "feature": {"audio_tier": "standard", "voiceover": True},
                    "callback_url": f"{hook_url}/hook",
                }
                resp = await client.post("/v1/jobs", json=spec)
                assert resp.status_code == 202, resp.text
                job_id = resp.json()["job_id"]
                answered = trace.parse(resp.headers.get("traceparent"))
                assert answered is not None and answered.trace_id == client_span.trace_id
                # A key in a query string (a client's mistake) lands in the access log line.
                leaky = await client.get(f"/v1/jobs/{job_id}", params={"api_key": api_key})
                assert leaky.status_code == 200

                deadline = time.monotonic() + 150
                job = (await client.get(f"/v1/jobs/{job_id}")).json()
                while job["status"] not in ("COMPLETED", "FAILED"):
                    assert time.monotonic() < deadline, f"job stuck: {json.dumps(job)[:2000]}"
                    await asyncio.sleep(0.5)
                    job = (await client.get(f"/v1/jobs/{job_id}")).json()
                assert job["status"] == "COMPLETED" and job["audio_status"] == "COMPLETED", job
                for _ in range(100):
                    if receiver.calls:
                        break
                    await asyncio.sleep(0.2)
    trace_id = client_span.trace_id

    # The job remembers its trace (the console shows it).
    mongo = connect(settings)
    try:
        doc = await database(mongo, settings)["jobs"].find_one({"_id": job_id})
    finally:
        await mongo.close()
    assert doc is not None and doc["trace_id"] == trace_id

    # (a) Every record of the job, on every topic it crossed, carries the trace.
    records = await everything_on(settings)
    ours = [r for r in records if job_of(r) == job_id]
    crossed = {r.topic.removeprefix(settings.topic_prefix) for r in ours}
    assert {t.name for t in JOB_TOPICS} <= crossed, crossed
    for r in ours:
        parent = trace.parse(dict(r.headers).get(trace.TRACEPARENT))
        assert parent is not None and parent.trace_id == trace_id, (r.topic, r.headers)

    # (b) The webhook call continues it.
    assert receiver.calls, "no webhook call"
    for call in receiver.calls:
        hook_ctx = trace.parse(call.get("traceparent"))
        assert hook_ctx is not None and hook_ctx.trace_id == trace_id

    # (c) Every log line is a JSON object; those about the job carry its id and trace.
    about: dict[str, int] = {}
    for name, line in log_lines(tmp_path):
        entry = json.loads(line)  # a line that is not JSON fails here
        assert {"time", "level", "logger", "message", "service"} <= set(entry), line
        if entry.get("job_id") == job_id or job_id in line:
            assert entry.get("job_id") == job_id and entry.get("trace_id") == trace_id, line
            about[name] = about.get(name, 0) + 1
    assert set(about) == {f"{m}.{n}.log" for n, m in enumerate(MODULES)}, about

    # (d) No credential in any log line or on any topic, though the key did reach a log line.
    logs = "\n".join(line for _, line in log_lines(tmp_path))
    assert f"/v1/jobs/{job_id}?api_key=<redacted>" in logs
    # Every record on the topics, not only the job's.
    events = "\n".join(repr(r.value) + repr(r.headers) for r in records)
    # td_ + 12 hex + _: the key's id, shown in listings; the rest is the secret.
    forbidden = [api_key, api_key[16:], webhook_secret,
                 webhook_secret.removeprefix("whsec_"), *provider_keys.values(),
                 settings.s3_secret_key.get_secret_value(), "X-Amz-Signature"]  # fmt: skip
    for secret in forbidden:
        assert secret not in logs, f"a secret in the logs: {secret[:8]}..."
        assert secret not in events, f"a secret on the topics: {secret[:8]}..."
    assert contract.counts["submit"] >= 1  # the provider key was really used
