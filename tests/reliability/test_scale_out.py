"""Two, then three workers of one stage share its partitions; one is stopped (SIGTERM) and
another killed (``kill -9``) mid-run: every job completes, none twice, and the survivors
take the partitions over (the killed worker's once its session times out)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from schemas.clip import ClipFailed, ClipReady
from schemas.merge import MergeCompleted, MergeFailed
from services.common.settings import Settings
from tests.reliability.support import Stack, open_stack
from tests.support.pipeline import until
from tests.support.workload import Job

MODULES = ("services.submitter", "services.clipper", "services.clipper",
           "services.merger", "services.merger")  # fmt: skip


@pytest.fixture(scope="module")
async def scaled(direct: Settings, proxied: Settings, home: Path) -> AsyncIterator[Stack]:
    async with open_stack(direct, proxied, home, modules=MODULES) as stack:
        yield stack


async def submit(stack: Stack, clips: int, merges: int) -> list[Job]:
    kinds = ["clip"] * clips + ["merge"] * merges
    return list(await asyncio.gather(*(stack.workload.submit(k) for k in kinds)))


def done(jobs: list[Job]) -> int:
    return sum(j.status is not None for j in jobs)


async def test_workers_join_leave_and_die_without_losing_or_repeating_work(
    scaled: Stack,
) -> None:
    pipeline, wl = scaled.pipeline, scaled.workload
    jobs = await submit(scaled, 20, 4)
    # A third worker of each stage joins while the first batch is under way.
    for module in ("services.clipper", "services.merger"):
        pipeline.start(module)
    await pipeline.ready(timeout_s=90)
    jobs += await submit(scaled, 20, 4)

    async def halfway() -> bool:
        for job in jobs:
            await wl.poll(job)
        return done(jobs) >= len(jobs) // 3

    await until(halfway, 120, "a third of the jobs done")
    # Mid-run: one of each stage stopped as in a rollout, another killed outright.
    stopped = [pipeline.workers["clipper-1"], pipeline.workers["merger-1"]]
    killed = [pipeline.workers["clipper-2"], pipeline.workers["merger-2"]]
    for worker in stopped:
        worker.proc.terminate()
    for worker in killed:
        pipeline.kill(worker)
    for worker in stopped:
        pipeline.terminate(worker)
    at = time.monotonic()
    jobs += await submit(scaled, 10, 2)
    await scaled.finish(jobs, timeout_s=240)
    print(f"{len(jobs)} jobs; the survivors finished them {time.monotonic() - at:.1f} s "
          "after the stop and the kill")  # fmt: skip
    # Every job answered once on the wire too: a repeat would be a second record.
    answers = Counter(e.request_id for e in scaled.watch.events((ClipReady, ClipFailed)))
    answers.update(e.job_id for e in scaled.watch.events((MergeCompleted, MergeFailed)))
    repeated = {j.job_id: answers[j.job_id] for j in jobs if answers[j.job_id] != 1}
    assert not repeated, repeated
