"""The soak: mixed jobs (productions, clips, merges) through the whole pipeline while faults
are injected at random from a seed: workers killed (``kill -9``) or stopped (SIGTERM) and
restarted, Kafka, MongoDB and S3 slowed, throttled, cut off or taken down for a while, the
audio provider failing. At the end every job is in a final state (a failure with its
reason), each effect happened once, the counts add up, every dead letter says why, and no
process or temp file is left over.

``make soak`` runs the long soak (at least 300 jobs over 10 minutes, TAPEDECK_SOAK=1);
``make test`` runs a short one. TAPEDECK_SOAK_SEED picks the seed (printed with the
figures, which also go to test-artifacts/soak/). Same seed, same jobs and faults in the
same order; the machine decides how they interleave.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from schemas.dlq import HEADER_ERROR, HEADER_STAGE
from schemas.topics import DLQ_SUFFIX
from services.common.settings import Settings
from tests.reliability.conftest import PROVIDER_ENV, SOAK, Rig
from tests.reliability.support import Stack, open_stack
from tests.support.contract.fal import FalContract
from tests.support.kafka import read
from tests.support.pipeline import Worker
from tests.support.services import ROOT
from tests.support.workload import FINAL, Job, audit

SEED = int(os.environ.get("TAPEDECK_SOAK_SEED", "1204"))
MODULES = ("services.submitter", "services.lifecycle", "services.lifecycle", "services.audio_agent",
           "services.merger", "services.clipper", "services.clipper")  # fmt: skip
RETRY_LINE = re.compile(r"retrying in|; retry \d+/\d+ in")


@dataclass(frozen=True)
class Plan:
    seconds: float  # jobs are submitted, and faults injected, for this long
    jobs: int
    pause_s: tuple[float, float]  # between one fault's end and the next
    settle_s: float  # then every job must be final within this


LONG = Plan(seconds=600, jobs=320, pause_s=(3, 8), settle_s=300)
SHORT = Plan(seconds=25, jobs=20, pause_s=(1, 3), settle_s=180)


@dataclass
class Figures:
    mode: str
    seed: int
    jobs: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    audio_failed: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    dead_letters: int = 0
    p50_s: float = 0.0
    p99_s: float = 0.0
    max_s: float = 0.0
    duration_s: float = 0.0

    def table(self) -> str:
        rows = [("mode", self.mode), ("seed", self.seed), ("jobs", self.jobs),
                ("by kind", _pairs(self.by_kind)), ("by status", _pairs(self.by_status)),
                ("audio failed (job completed with its video)", self.audio_failed),
                ("faults", f"{sum(self.faults.values())}: {_pairs(self.faults)}"),
                ("retries (logged)", self.retries), ("dead letters", self.dead_letters),
                ("job time p50 / p99 / max", f"{self.p50_s:.1f} s / {self.p99_s:.1f} s / "
                                             f"{self.max_s:.1f} s"),
                ("duration", f"{self.duration_s:.0f} s")]  # fmt: skip
        return "\n".join(f"  {name:<45} {value}" for name, value in rows)


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


# -- jobs -----------------------------------------------------------------------------------------


def job_spec(stack: Stack, rng: random.Random) -> dict[str, Any]:
    kind = rng.choices(("clip", "merge", "production"), weights=(45, 25, 30))[0]
    if kind != "production":
        return stack.workload.spec(kind)
    tier = rng.choice(("basic", "basic", "standard"))
    spec = stack.workload.spec(kind, tier=tier, sound="sfx" if tier == "standard" else "music")
    if rng.random() < 0.3:
        spec["audio_params"]["error_strategy"] = "halt"
    if rng.random() < 0.15:  # a voiceover from the scenes' text, mixed under the music
        spec["feature"]["voiceover"] = True
        for n, scene in enumerate(spec["scenes"]):
            scene["text"] = f"Scene {n}."
    return spec


async def submit_jobs(stack: Stack, rng: random.Random, plan: Plan) -> list[Job]:
    """``plan.jobs`` submissions spread over ``plan.seconds``, each retried through an
    outage by its own task."""
    started = time.monotonic()
    tasks = []
    for n in range(plan.jobs):
        spec = job_spec(stack, rng)
        await asyncio.sleep(max(0.0, started + n * plan.seconds / plan.jobs - time.monotonic()))
        tasks.append(asyncio.create_task(stack.workload.submit(spec["job_kind"], spec, 240)))
    return list(await asyncio.gather(*tasks))


# -- faults ---------------------------------------------------------------------------------------


class Injector:
    def __init__(self, stack: Stack, rig: Rig, contract: FalContract, rng: random.Random,
                 plan: Plan) -> None:  # fmt: skip
        self.stack, self.rig, self.contract, self.rng, self.plan = stack, rig, contract, rng, plan
        self.counts: Counter[str] = Counter()
        self.proxies = {"kafka": rig.kafka, "mongo": rig.mongo, "s3": rig.s3}

    def victim(self) -> Worker:
        workers = [w for w in self.stack.workers]  # every worker but the submitter
        return self.rng.choice(sorted(workers, key=lambda w: w.name))

    async def kill(self) -> str:
        worker = self.victim()
        self.stack.pipeline.kill(worker)
        await asyncio.sleep(self.rng.uniform(0, 2))
        self.stack.pipeline.restart(worker)
        return f"kill -9 {worker.module.rsplit('.', 1)[-1]}"

    async def stop(self) -> str:
        worker = self.victim()
        await asyncio.to_thread(self.stack.pipeline.terminate, worker, 60)
        self.stack.pipeline.restart(worker)
        return f"SIGTERM {worker.module.rsplit('.', 1)[-1]}"

    async def toxic(self) -> str:
        name = self.rng.choice(sorted(self.proxies))
        proxy, tp = self.proxies[name], self.rig.toxiproxy
        kind = self.rng.choice(("latency", "latency", "reset_peer", "bandwidth", "down"))
        if kind == "bandwidth" and name != "s3":
            kind = "latency"
        last = self.rng.uniform(3, 10 if kind != "down" else 15)
        if kind == "down":
            with tp.down(proxy):
                await asyncio.sleep(last)
        else:
            attrs: dict[str, int] = {
                "latency": {"latency": self.rng.randint(100, 500), "jitter": 50},
                "reset_peer": {"timeout": self.rng.randint(200, 1000)},
                "bandwidth": {"rate": self.rng.randint(128, 512)},
            }[kind]
            with tp.toxic(proxy, kind, **attrs):
                await asyncio.sleep(last)
        return f"{name} {kind}"

    async def provider(self) -> str:
        status = self.rng.choice((429, 500, 503))
        times = self.rng.randint(1, 4)
        self.contract.fail("submit", status, {"detail": "soak"}, headers={"Retry-After": "0"},
                           times=times)  # fmt: skip
        await asyncio.sleep(self.rng.uniform(1, 4))
        return f"provider {status}"

    async def run(self, until: float) -> None:
        faults: list[Callable[[], Coroutine[Any, Any, str]]] = [
            self.kill,
            self.kill,
            self.stop,
            self.toxic,
            self.toxic,
            self.provider,
        ]
        while time.monotonic() < until:
            await asyncio.sleep(self.rng.uniform(*self.plan.pause_s))
            what = await self.rng.choice(faults)()
            self.counts[what] += 1
        self.rig.toxiproxy.reset()
        self.contract.faults.clear()


# -- the end --------------------------------------------------------------------------------------


async def every_job_of_the_tenant(stack: Stack) -> list[dict[str, Any]]:
    """The tenant's jobs as the API lists them: those a retried submission left behind
    included."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = (await stack.workload._http.get("/v1/jobs", params=params)).json()
        out += page["jobs"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


async def dead_letters(direct: Settings) -> list[Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=direct.kafka_bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics()
                  if t.startswith(direct.topic_prefix) and t.endswith(DLQ_SUFFIX)]  # fmt: skip
    finally:
        await admin.close()
    records = []
    for topic in topics:
        records += await read(direct, topic, 10**9, timeout_s=2)
    return records


def retries_logged(stack: Stack) -> int:
    return sum(len(RETRY_LINE.findall(p.read_text(errors="replace")))
               for p in stack.pipeline.home.glob("*.log"))  # fmt: skip


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def test_soak(
    direct: Settings, proxied: Settings, home: Path, rig: Rig, fal: tuple[FalContract, str]
) -> None:
    plan = LONG if SOAK else SHORT
    figures = Figures("long" if SOAK else "short", SEED)
    contract, fal_url = fal
    started = time.monotonic()
    env = {**PROVIDER_ENV, "FAL_QUEUE_URL": fal_url}
    async with open_stack(direct, proxied, home, modules=MODULES, env=env) as stack:
        injector = Injector(stack, rig, contract, random.Random(f"{SEED}-faults"), plan)
        faults = asyncio.create_task(injector.run(time.monotonic() + plan.seconds))
        jobs = await submit_jobs(stack, random.Random(f"{SEED}-jobs"), plan)
        await faults
        # Every worker the injector stopped it started again: none may have died alone.
        assert not stack.pipeline.dead(), stack.pipeline.dead()
        await stack.workload.settle(jobs, plan.settle_s)
        problems = await audit(direct, stack.watch, jobs)
        assert not problems, problems
        unreasoned = [j.job_id for j in jobs if j.status == "FAILED" and not j.reason]
        assert not unreasoned, unreasoned
        # The counts add up: every job the tenant has (a submission retried through an
        # outage may leave one behind) is final, and each one tracked here is among them.
        listed = await every_job_of_the_tenant(stack)
        statuses = Counter(j["status"] for j in listed)
        assert set(statuses) <= set(FINAL), statuses
        assert {j.job_id for j in jobs} <= {j["job_id"] for j in listed}
        extra = [j for j in listed if j["job_id"] not in {t.job_id for t in jobs}]
        assert all(j["status"] != "FAILED" or j.get("error") for j in extra), extra
        dlq = await dead_letters(direct)
        why = {HEADER_ERROR, HEADER_STAGE}
        unexplained = [r for r in dlq if not why <= {k for k, _ in r.headers}]
        assert not unexplained, unexplained
        figures.retries = retries_logged(stack)
        pipeline = stack.pipeline
    # Everything stopped: nothing it started runs on, nothing it wrote stays in its TMPDIR.
    assert pipeline.strays() == [], pipeline.strays()
    left = [p for p in pipeline.temp_files() if p.name.startswith("tapedeck-")]
    assert not left, left

    times = sorted(j.seconds for j in jobs if j.seconds is not None)
    figures.jobs = len(jobs)
    figures.by_kind = dict(Counter(j.kind for j in jobs))
    figures.by_status = dict(Counter(str(j.status) for j in jobs))
    figures.audio_failed = sum(j.doc.get("audio_status") == "FAILED" for j in jobs)
    figures.faults = dict(injector.counts)
    figures.dead_letters = len(dlq)
    figures.p50_s, figures.p99_s = percentile(times, 50), percentile(times, 99)
    figures.max_s = times[-1] if times else 0.0
    figures.duration_s = time.monotonic() - started
    out = ROOT / "test-artifacts" / "soak" / f"{figures.mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(figures), indent=2) + "\n")
    print(f"\nsoak figures ({out.relative_to(ROOT)}):\n{figures.table()}")
    assert figures.jobs >= plan.jobs and sum(figures.faults.values()) > 0
