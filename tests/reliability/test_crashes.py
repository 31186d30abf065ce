"""``kill -9`` of each stage's worker in the middle of a job, then a restart under the same
WORKER_ID: the job completes with exactly one result object, one set of MongoDB records,
one outcome event and one provider submission per scene.

A worker acks an event (and so lets its offset be committed) only once it has handled it,
so a kill the moment an output is stored lands "after the upload, before the Kafka commit":
the restarted worker gets the event again, and its ledger, its lease and deterministic
keys and event ids must make the second delivery harmless. (A clipper killed mid-cut:
tests/e2e/test_clipper_crash.py.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from services.common.keys import clip_key
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.settings import Settings
from tests.reliability.conftest import Rig
from tests.reliability.support import Stack, long_merge, upload_long_videos
from tests.support.contract.fal import FalContract
from tests.support.pipeline import until
from tests.support.workload import EPISODE, TENANT


@pytest.fixture(scope="module")
async def long_videos(shared: Stack, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return await upload_long_videos(shared.direct, tmp_path_factory.mktemp("long"))


async def stage_status(direct: Settings, job_id: str) -> list[str]:
    mongo = connect(direct)
    try:
        return [d["status"] async for d in database(mongo, direct)["job_stages"].find(
            {"job_id": job_id})]  # fmt: skip
    finally:
        await mongo.close()


async def test_the_audio_agent_killed_while_waiting_on_the_provider(
    whole: Stack, fal: tuple[FalContract, str]
) -> None:
    contract, _ = fal
    contract.reset()
    contract.script({"status": "IN_QUEUE", "queue_position": 2})
    wl, pipeline = whole.workload, whole.pipeline
    job = await wl.submit("production", wl.spec("production", tier="standard", sound="sfx"))
    await until(lambda: contract.counts["status"] >= 4, 60, "the agent polls the provider")
    agent = whole.worker("audio_agent")
    pipeline.kill(agent)
    polled = contract.counts["status"]
    pipeline.restart(agent)
    await until(lambda: contract.counts["status"] > polled + 2, 30,
                "the restarted agent polls the requests it recorded")  # fmt: skip
    contract.script({"status": "COMPLETED"})
    await whole.finish([job])
    assert job.doc["audio_status"] == "COMPLETED", job.doc
    # One paid request per scene, the killed worker's included: none asked for twice.
    assert contract.counts["submit"] == len(wl.videos), contract.counts


async def test_the_merger_killed_mid_ffmpeg(whole: Stack, long_videos: list[str]) -> None:
    wl, pipeline = whole.workload, whole.pipeline
    spec = long_merge(long_videos)
    merger = whole.worker("merger")
    job = await wl.submit("merge", spec)
    encoding = await until(lambda: pipeline.children(merger), 60, "the merger runs ffmpeg",
                           step_s=0.02)  # fmt: skip
    pipeline.kill(merger)
    # Its ffmpeg dies with it (PR_SET_PDEATHSIG), and its scratch dir goes at the restart.
    await until(lambda: not any(Path(f"/proc/{p}").exists() for p in encoding), 5,
                f"ffmpeg {encoding} dies with the merger")  # fmt: skip
    pipeline.restart(merger)
    await whole.finish([job], timeout_s=180)
    assert not [p for p in pipeline.temp_files() if "tapedeck-merge-" in p.name]


async def killed_after_the_upload(
    whole: Stack, rig: Rig, module: str, spec: dict[str, Any], key: str
) -> None:
    """Submit ``spec``; ``kill -9`` ``module``'s worker the moment ``key`` is in S3 (slow
    MongoDB and Kafka links keep it from recording its outcome first); restart it."""
    wl, pipeline = whole.workload, whole.pipeline
    worker = whole.worker(module)
    tp = rig.toxiproxy
    slow = [tp.add(rig.kafka, "latency", stream="upstream", latency=400),
            tp.add(rig.mongo, "latency", stream="upstream", latency=150)]  # fmt: skip
    job = await wl.submit(spec["job_kind"], spec)
    async with MediaStore.from_settings(whole.direct) as media:

        async def stored() -> bool:
            return await media.head(key) is not None

        await until(stored, 60, f"{key} is stored", step_s=0.02)
    pipeline.kill(worker)
    for proxy, name in zip((rig.kafka, rig.mongo), slow, strict=True):
        tp.remove(proxy, name)
    # Its stage record says it never got as far as recording the outcome: the restarted
    # worker gets the event again and must not do it twice.
    assert await stage_status(whole.direct, job.job_id) == ["RUNNING"]
    pipeline.restart(worker)
    await whole.finish([job])


async def test_the_clipper_killed_after_the_upload_before_the_commit(
    whole: Stack, rig: Rig
) -> None:
    spec = whole.workload.spec("clip")
    start, end = spec["start_ms"], spec["start_ms"] + spec["duration_ms"]
    key = clip_key(TENANT, EPISODE, start, end, "mp3")
    await killed_after_the_upload(whole, rig, "clipper", spec, key)


async def test_the_merger_killed_after_the_upload_before_the_commit(whole: Stack, rig: Rig) -> None:
    spec = whole.workload.spec("merge")
    await killed_after_the_upload(whole, rig, "merger", spec, spec["output_key"])


async def test_the_lifecycle_killed_mid_job(whole: Stack) -> None:
    wl, pipeline = whole.workload, whole.pipeline
    lifecycle = whole.worker("lifecycle")
    job = await wl.submit("production")

    async def merging() -> bool:
        return "RUNNING" in await stage_status(whole.direct, job.job_id)

    await until(merging, 60, "the job's stages are at work")
    pipeline.kill(lifecycle)
    pipeline.restart(lifecycle)
    await whole.finish([job])


def plant(stale: Path) -> Path:
    stale.mkdir()
    (stale / "part.wav").write_bytes(b"RIFF")
    return stale


async def test_a_restarted_worker_clears_what_its_killed_run_left_in_tmp(whole: Stack) -> None:
    """Scratch dirs of a run killed mid-work (named ``tapedeck-<what>-<pid>-...``), one per
    kind of work each stage does, are gone once the worker is back."""
    pipeline = whole.pipeline
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()
    dead = proc.pid  # a pid no process has any more
    left = {
        "clipper": ["tapedeck-clip-"],
        "merger": ["tapedeck-merge-"],
        "audio_agent": ["tapedeck-audio-", "tapedeck-voice-"],
    }
    planted = []
    for module, prefixes in left.items():
        worker = whole.worker(module)
        planted += [plant(pipeline.tmpdir / f"{prefix}{dead}-x1y2z3") for prefix in prefixes]
        pipeline.kill(worker)
        pipeline.restart(worker)
    await pipeline.ready()

    def cleared() -> bool:
        return not [p for p in planted if p.exists()]

    await until(cleared, 30, "the restarted workers clear the stale scratch dirs")
