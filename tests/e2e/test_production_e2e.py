"""Production jobs through the real services, each its own process (submitter, two
lifecycle workers, audio agent, merger, webhook delivery), over HTTP and over the topics:
scene videos joined by stream copy, scored, muxed; audio failing on its own; an upstream
video generator played by the test; idempotency, tenancy, retry, cancel and webhooks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from schemas import TOPICS, decode_event
from schemas.merge import MergeRequested
from schemas.video import VideoJobSubmitted, VideoRendered
from services.common.media_store import MediaStore
from services.common.settings import Settings
from services.webhooks.signing import verify
from tests.support.contract.fal import KEY as FAL_KEY
from tests.support.contract.fal import FalContract
from tests.support.contract.server import serve
from tests.support.kafka import produce, read
from tests.support.services import ROOT, running, settings_env

MODULES = (
    "services.submitter",
    "services.lifecycle",
    "services.lifecycle",
    "services.audio_agent",
    "services.merger",
    "services.webhooks",
)
SCENE_S = 2


def make_video(path: Path, n: int, size: str = "320x240", rate: int = 25) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate={rate}:duration={SCENE_S}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={300 + 100 * n}:duration={SCENE_S}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(rate),
            "-c:a",
            "aac",
            "-ar",
            "44100",
            "-ac",
            "2",
            "-shortest",
            str(path),
        ],
        check=True,
    )
    return path


def tapedeck(settings: Settings, *args: str) -> dict[str, Any]:
    env = {**os.environ, **settings_env(settings)}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "tapedeck"), *args, "--json"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def video_md5s(path: str) -> list[str]:
    """Checksums of the video stream's packets: equal lists mean no re-encode."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-i",
            path,
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "framemd5",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if not line.startswith("#")
    ]


def stream_seconds(path: str, stream: str) -> float:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            "stream=duration",
            "-of",
            "csv=p=0",
            path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[0])


class Receiver:
    """A webhook receiver on loopback: records every call; fails the first ``failures``."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.calls.append(
            ({k.lower(): v for k, v in request.headers.items()}, await request.body())
        )
        if self.failures:
            self.failures -= 1
            return Response(status_code=500)
        return Response(status_code=204)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_RETRY_DELAYS_S": "0.5,0.5,0.5",
        "WEBHOOK_SWEEP_S": "0.5",
        "LIFECYCLE_SWEEP_S": "1",
        "VIDEO_TIMEOUT_S": "600",
        "PROVIDER_MAX_RETRIES": "1",
        "PROVIDER_POLL_MIN_S": "0.05",
        "PROVIDER_POLL_MAX_S": "0.2",
        "BROKER_SESSION_TIMEOUT": "6",
        "BROKER_HEARTBEAT_INTERVAL": "1",
        "TMPDIR": str(tmp_path),
    }


async def wait_for(
    client: httpx.AsyncClient, job_id: str, *statuses: str, timeout_s: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
        if job.get("status") in statuses:
            return dict(job)
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck: {json.dumps(job)[:3000]}")
        await asyncio.sleep(0.3)


async def settle(done: Callable[[], bool], timeout_s: float, step_s: float = 0.3) -> None:
    """Poll ``done`` until it holds or ``timeout_s`` passes (the test's asserts judge)."""
    for _ in range(int(timeout_s / step_s)):
        if done():
            return
        await asyncio.sleep(step_s)


@pytest.fixture
async def fal() -> AsyncIterator[tuple[FalContract, str]]:
    contract = FalContract()
    async with serve(contract.app) as url:
        yield contract, url


async def test_production_jobs_end_to_end(
    settings: Settings, tmp_path: Path, env: dict[str, str], fal: tuple[FalContract, str]
) -> None:
    contract, fal_url = fal
    contract.fail("submit", 500, {"detail": "GPU pool exhausted"}, times=100)
    receiver, failing = Receiver(), Receiver(failures=2)
    acme = tapedeck(settings, "keys", "create", "--tenant", "acme")
    other = tapedeck(settings, "keys", "create", "--tenant", "other")
    videos = [make_video(tmp_path / f"s{n}.mp4", n) for n in range(3)]
    odd = make_video(tmp_path / "odd.mp4", 9, size="160x120", rate=15)
    async with MediaStore.from_settings(settings) as media:
        keys = [f"ingest/acme/s{n}.mp4" for n in range(3)]
        for key, path in zip(keys, videos, strict=True):
            await media.upload_file(key, path)
        await media.upload_file("ingest/acme/odd.mp4", odd)
    fal_music = '{"standard": {"music": "fal:cassetteai/music-generator"}}'
    services_env = {
        **env,
        "FAL_QUEUE_URL": fal_url,
        "FAL_KEY": FAL_KEY,
        "AUDIO_TIER_MAP": fal_music,
    }
    async with serve(receiver.app) as hook_url, serve(failing.app) as failing_url:
        with running(settings, tmp_path, MODULES, **services_env) as base:
            headers = {"Authorization": f"Bearer {acme['key']}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
                scenes: list[dict[str, Any]] = [
                    {
                        "prompt": f"scene {n}",
                        "duration_s": SCENE_S,
                        "video": k,
                        "text": f"Line {n}.",
                    }
                    for n, k in enumerate(keys)
                ]
                spec: dict[str, Any] = {
                    "job_kind": "production",
                    "prompt": "a calm sea",
                    "scenes": scenes,
                    # A voiceover ducks the music and is mixed in before loudness.
                    "feature": {"voiceover": True},
                    "callback_url": f"{hook_url}/hook",
                }
                # -- the main job, submitted twice with one key, and once with another body
                first = await client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "k1"})
                assert first.status_code == 202, first.text
                again = await client.post("/v1/jobs", json=spec, headers={"Idempotency-Key": "k1"})
                assert again.json()["job_id"] == first.json()["job_id"]
                clash = await client.post(
                    "/v1/jobs", json={**spec, "prompt": "stormy"}, headers={"Idempotency-Key": "k1"}
                )
                assert (
                    clash.status_code == 409
                    and clash.json()["error"]["code"] == "idempotency_conflict"
                )
                job_id = first.json()["job_id"]
                theirs = {"Authorization": f"Bearer {other['key']}"}
                stranger = await client.get(f"/v1/jobs/{job_id}", headers=theirs)
                assert stranger.status_code == 404

                done = await wait_for(client, job_id, "COMPLETED", "FAILED")
                assert done["status"] == "COMPLETED", done
                assert done["audio_status"] == "COMPLETED" and done["audioStatus"] == "COMPLETED"
                result = tmp_path / "result.mp4"
                result.write_bytes((await client.get(done["result_url"])).content)
                video_s = stream_seconds(str(result), "v:0")
                assert abs(stream_seconds(str(result), "a:0") - video_s) <= 0.05
                joined = [m for v in videos for m in video_md5s(str(v))]
                assert video_md5s(str(result)) == joined, "the video was re-encoded"

                # -- a new soundtrack, the same video
                retried = await client.post(f"/v1/jobs/{job_id}/retry?stage=audio")
                assert retried.status_code == 202, retried.text
                await asyncio.sleep(0.5)
                done2 = await wait_for(client, job_id, "COMPLETED", "FAILED")
                assert done2["version"] == 2 and done2["outputs"]["result"].endswith(
                    "result-v2.mp4"
                )
                assert done2["outputs"]["video"] == done["outputs"]["video"]

                # -- audio that fails leaves the video, and says why
                broken = {
                    **spec,
                    "feature": {"audio_tier": "standard"},
                    "audio_params": {"error_strategy": "halt"},
                    "callback_url": f"{failing_url}/hook",
                }
                resp = await client.post("/v1/jobs", json=broken)
                no_audio = await wait_for(client, resp.json()["job_id"], "COMPLETED", "FAILED")
                assert no_audio["status"] == "COMPLETED" and no_audio["audio_status"] == "FAILED"
                assert no_audio["audioError"].startswith("Audio generation failed")
                assert no_audio["outputs"]["result"] == no_audio["outputs"]["video"]
                assert contract.counts["submit"] >= 1

                # -- different videos are normalised; cancel stops a job waiting upstream
                mixed = {
                    **spec,
                    "scenes": [
                        *scenes[:1],
                        {"prompt": "odd", "duration_s": SCENE_S, "video": "ingest/acme/odd.mp4"},
                    ],
                    "feature": {"audio": False},
                    "callback_url": None,
                }
                resp = await client.post("/v1/jobs", json=mixed)
                joined_job = await wait_for(client, resp.json()["job_id"], "COMPLETED", "FAILED")
                assert joined_job["status"] == "COMPLETED", joined_job
                upstream = {
                    "job_kind": "production",
                    "prompt": "waves",
                    "duration_seconds": 2,
                    "video": {"source": "upstream"},
                    "feature": {"audio": False},
                }
                resp = await client.post("/v1/jobs", json=upstream)
                waiting = resp.json()["job_id"]
                cancelled = await client.post(f"/v1/jobs/{waiting}/cancel")
                assert cancelled.status_code == 200, cancelled.text
                assert cancelled.json()["status"] == "CANCELLED", cancelled.json()

                # -- the video generator, played by this test, over the topics
                resp = await client.post("/v1/jobs", json=upstream)
                up_id = resp.json()["job_id"]
                asked = await read(
                    settings, TOPICS.video_jobs.full_name(settings.topic_prefix), 2, timeout_s=30
                )
                mine = [
                    e
                    for e in (decode_event(r.value) for r in asked if r.value)
                    if isinstance(e, VideoJobSubmitted) and e.job_id == up_id
                ]
                assert len(mine) == 1
                rendered = VideoRendered(
                    job_id=up_id,
                    tenant_id="acme",
                    producer="test-gen",
                    s3_key=keys[0],
                    duration_s=SCENE_S,
                    width=320,
                    height=240,
                    codec="h264",
                )
                results = TOPICS.video_results.full_name(settings.topic_prefix)
                await produce(
                    settings, results, [rendered.model_dump_json().encode()], key=up_id.encode()
                )
                up = await wait_for(client, up_id, "COMPLETED", "FAILED")
                assert up["status"] == "COMPLETED" and up["outputs"]["video"] == keys[0]

                # -- webhooks: signed; a failing receiver's retries are recorded
                await settle(lambda: bool(receiver.calls) and len(failing.calls) >= 3, 30)
                secret = acme["webhook_secret"]
                for hdrs, body in receiver.calls:
                    verify(secret, hdrs, body)  # raises unless signed with the tenant's secret
                assert receiver.calls and len(failing.calls) == 3
                noted = (await client.get(f"/v1/jobs/{no_audio['job_id']}")).json()["webhooks"]
                assert [w.get("status") for w in noted if w.get("status")][:3] == [500, 500, 204]

    # Two lifecycle workers, every outcome seen: each merge asked for exactly once.
    merges = await read(
        settings,
        TOPICS.merge_requests.full_name(settings.topic_prefix),
        1,
        timeout_s=10,
        settle_s=1,
    )
    asked_for = [
        e
        for e in (decode_event(r.value) for r in merges if r.value)
        if isinstance(e, MergeRequested) and e.job_id == job_id
    ]
    steps = [m.step or "" for m in asked_for]
    assert sorted(steps) == sorted(set(steps)), steps
    assert {"concat", "soundtrack-a1", "mux-v1", "soundtrack-a2", "mux-v2"} <= set(steps)
