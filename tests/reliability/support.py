"""What the reliability tests share: the whole pipeline as service processes behind the
fault rig, a tenant's workload on it, and the checks every scenario ends with."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.kafka import ensure_topics
from services.common.media_store import MediaStore
from services.common.settings import Settings
from tests.support.pipeline import Pipeline, Worker
from tests.support.watch import TopicWatch
from tests.support.workload import KINDS, TENANT, Job, Workload, audit, outcome_topics

PIPELINE = ("services.submitter", "services.lifecycle", "services.audio_agent",
            "services.merger", "services.clipper")  # fmt: skip
# Quick sweeps: the lifecycle re-sends what a dead worker claimed but never sent.
BASE_ENV = {"LIFECYCLE_SWEEP_S": "1", "OUTBOX_GRACE_S": "5"}


@dataclass
class Stack:
    pipeline: Pipeline
    workload: Workload
    watch: TopicWatch
    direct: Settings

    @property
    def workers(self) -> list[Worker]:
        return [w for w in self.pipeline.workers.values()
                if w.module != "services.submitter" and w.alive()]  # fmt: skip

    def worker(self, module: str) -> Worker:
        return next(w for w in self.pipeline.workers.values()
                    if w.module == f"services.{module}" and w.alive())  # fmt: skip

    async def submit_mix(self) -> list[Job]:
        return [await self.workload.submit(kind) for kind in KINDS]

    async def finish(self, jobs: list[Job], timeout_s: float = 240, *,
                     completed: bool = True) -> None:  # fmt: skip
        """Every job final, each effect once, no service dead; with ``completed`` every
        job COMPLETED."""
        await self.workload.settle(jobs, timeout_s)
        problems = await audit(self.direct, self.watch, jobs)
        assert not problems, problems
        if completed:
            assert [j.status for j in jobs] == ["COMPLETED"] * len(jobs), [
                (j.kind, j.status, j.reason) for j in jobs
            ]
        assert not self.pipeline.dead(), self.pipeline.dead()

    async def readiness(self) -> dict[str, tuple[int, dict[str, str]]]:
        workers = self.workers
        answers = await asyncio.gather(*(self.pipeline.readyz(w) for w in workers))
        return {w.name: (code, body.get("checks", {}))
                for w, (code, body) in zip(workers, answers, strict=True)}  # fmt: skip


@asynccontextmanager
async def open_stack(
    direct: Settings, proxied: Settings, home: Path, *,
    modules: tuple[str, ...] = PIPELINE, env: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:  # fmt: skip
    """``modules`` started against the proxies, ready, with a tenant's inputs in place and
    the outcome topics followed; every process stopped afterwards."""
    await ensure_topics(direct)
    pipeline = Pipeline(proxied, home / "services", **{**BASE_ENV, **(env or {})})
    try:
        for module in modules:
            pipeline.start(module)
        await pipeline.ready(timeout_s=120)
        api = pipeline.workers["submitter-1"].url
        workload = await Workload.prepare(direct, api, home / "inputs")
        try:
            async with TopicWatch(direct, *outcome_topics(direct)) as watch:
                yield Stack(pipeline, workload, watch, direct)
        finally:
            await workload.close()
    finally:
        pipeline.stop_all()


LONG_S = 12


async def upload_long_videos(direct: Settings, home: Path) -> list[str]:
    """Two longer videos that differ in size and rate: joining them re-encodes for seconds,
    long enough for a test to catch the merger in ffmpeg."""
    keys = []
    async with MediaStore.from_settings(direct) as media:
        for n, (size, rate) in enumerate((("320x240", 25), ("240x180", 15))):
            path = home / f"long{n}.mp4"
            if not path.exists():
                await asyncio.to_thread(subprocess.run, [
                    "ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=size={size}:rate={rate}:duration={LONG_S}", "-f", "lavfi",
                    "-i", f"sine=frequency=500:duration={LONG_S}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(path),
                ], check=True)  # fmt: skip
            key = f"ingest/{TENANT}/long{n}.mp4"
            await media.upload_file(key, path)
            keys.append(key)
    return keys


def long_merge(videos: list[str]) -> dict[str, Any]:
    return {"job_kind": "merge", "operation": "concat_video", "inputs": videos,
            "output_key": f"outputs/{TENANT}/long-{uuid.uuid4().hex[:8]}.mp4"}  # fmt: skip
