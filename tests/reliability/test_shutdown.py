"""SIGTERM during work, as Kubernetes stops a pod: the worker finishes its event or hands it
back within the grace period, and no temp file or child process outlives it. A worker
started in its place finishes what was handed back, once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.reliability.conftest import Rig
from tests.reliability.support import Stack, long_merge, upload_long_videos
from tests.support.contract.fal import FalContract
from tests.support.pipeline import Worker, until

# The shortest grace the manifests give a worker (deploy/k8s/base/*.yaml).
GRACE_S = 60


def stop_within_grace(stack: Stack, worker: Worker, children: list[int]) -> float:
    started = time.monotonic()
    code = stack.pipeline.terminate(worker, timeout_s=GRACE_S)
    took = time.monotonic() - started
    # uvicorn (the submitter) ends a graceful shutdown by re-raising the signal.
    assert code in (0, -signal.SIGTERM), (code, stack.pipeline.tail(worker))
    alive = [p for p in children if Path(f"/proc/{p}").exists()]
    assert not alive, f"children of {worker.name} outlived it: {alive}"
    return took


async def test_the_merger_stopped_mid_ffmpeg(whole: Stack, tmp_path: Path) -> None:
    videos = await upload_long_videos(whole.direct, tmp_path)
    pipeline = whole.pipeline
    merger = whole.worker("merger")
    job = await whole.workload.submit("merge", long_merge(videos))
    encoding = await until(lambda: pipeline.children(merger), 60, "the merger runs ffmpeg",
                           step_s=0.02)  # fmt: skip
    took = stop_within_grace(whole, merger, encoding)
    print(f"merger stopped {took:.1f} s after SIGTERM")
    assert not [p for p in pipeline.temp_files() if "tapedeck-merge-" in p.name]
    pipeline.restart(merger)
    await whole.finish([job], timeout_s=180)


async def test_the_audio_agent_stopped_while_waiting_on_the_provider(
    whole: Stack, fal: tuple[FalContract, str]
) -> None:
    contract, _ = fal
    contract.reset()
    contract.script({"status": "IN_QUEUE", "queue_position": 1})
    wl, pipeline = whole.workload, whole.pipeline
    job = await wl.submit("production", wl.spec("production", tier="standard", sound="sfx"))
    await until(lambda: contract.counts["status"] >= 4, 60, "the agent polls the provider")
    agent = whole.worker("audio_agent")
    took = stop_within_grace(whole, agent, pipeline.children(agent))
    print(f"audio agent stopped {took:.1f} s after SIGTERM")
    polled = contract.counts["status"]
    pipeline.restart(agent)
    await until(lambda: contract.counts["status"] > polled, 30,
                "the agent in its place polls the handed-back requests")  # fmt: skip
    contract.script({"status": "COMPLETED"})
    await whole.finish([job])
    assert contract.counts["submit"] == len(wl.videos), contract.counts


async def test_every_service_stopped_while_busy_leaves_nothing_behind(whole: Stack) -> None:
    pipeline = whole.pipeline
    jobs = await whole.submit_mix() + await whole.submit_mix()
    # Mid-work (the mix takes a few seconds), every service at once, as in a rollout.
    await until(lambda: any(pipeline.children(w) for w in whole.workers) or None, 30,
                "some worker runs ffmpeg", step_s=0.02)  # fmt: skip
    workers = list(pipeline.workers.values())
    children = [c for w in workers for c in pipeline.children(w)]
    for worker in workers:
        worker.proc.terminate()
    for worker in workers:
        stop_within_grace(whole, worker, children)
    assert pipeline.strays() == [], pipeline.strays()
    assert [p for p in pipeline.temp_files() if p.is_dir() and "tapedeck-" in p.name] == []
    for worker in workers:
        pipeline.restart(worker)
    await pipeline.ready()
    await whole.finish(jobs)


async def test_a_worker_stopped_while_kafka_is_away_still_exits(whole: Stack, rig: Rig) -> None:
    """Stopping commits offsets, which waits on Kafka; with the broker out of reach a
    worker would retry for ever. It exits once SHUTDOWN_TIMEOUT_S has passed."""
    pipeline = whole.pipeline
    clipper = whole.worker("clipper")
    pipeline.terminate(clipper)
    clipper = pipeline.start(clipper.module, clipper.name, SHUTDOWN_TIMEOUT_S="5")
    await pipeline.ready(clipper)
    # Something handled just before, so there is an offset to commit on the way out.
    job = await whole.workload.submit("clip")
    await whole.finish([job])
    with rig.toxiproxy.down(rig.kafka):
        started = time.monotonic()
        code = pipeline.terminate(clipper, timeout_s=GRACE_S)
        took = time.monotonic() - started
    print(f"clipper stopped {took:.1f} s after SIGTERM with Kafka away (exit {code})")
    assert took <= 5 + 10, took
    clipper = pipeline.restart(clipper)
    await pipeline.ready(clipper)
    after = await whole.workload.submit("clip")
    await whole.finish([after])
