"""Jobs for the reliability tests, submitted over the public API like any client's, and
the audit that proves each one's promise: a final state with a reason, and every effect
once (one result object, one set of MongoDB records, one outcome event).

Three kinds, cheapest first: a clip (the clipper), a merge (the merger joins two scene
videos), a production (lifecycle, audio agent with the offline provider, merger).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from schemas import TOPICS
from schemas.clip import ClipFailed, ClipReady
from schemas.job import JobCompleted, JobFailed
from schemas.merge import MergeCompleted, MergeFailed
from services.common.clips import AUDIO_CLIPS
from services.common.episodes import EpisodeStore
from services.common.ffmpeg import FFmpeg
from services.common.job_store import STAGES
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.registration import register_file
from services.common.settings import Settings
from services.lifecycle.store import OUTCOMES
from services.submitter.keys import KeyStore, issue_key
from services.webhooks.secrets import WebhookSecretStore
from tests.support.watch import TopicWatch

TENANT = "reliable"
EPISODE = "ep-reliable"
EPISODE_S = 60
SCENE_S = 2
FINAL = ("COMPLETED", "FAILED", "CANCELLED")
KINDS = ("clip", "merge", "production")


def make_inputs(folder: Path) -> tuple[Path, list[Path]]:
    """A spoken-length tone episode (MP3) and two short scene videos (H.264 + AAC), made
    once per folder."""
    folder.mkdir(parents=True, exist_ok=True)
    episode = folder / "episode.mp3"
    base = ["ffmpeg", "-v", "error", "-nostdin", "-y"]
    if not episode.exists():
        subprocess.run([*base, "-f", "lavfi", "-i",
                        f"sine=frequency=330:sample_rate=44100:duration={EPISODE_S}",
                        "-c:a", "libmp3lame", "-b:a", "64k", str(episode)], check=True)  # fmt: skip
    videos = []
    for n in range(2):
        video = folder / f"scene{n}.mp4"
        if not video.exists():
            picture = f"testsrc2=size=160x120:rate=15:duration={SCENE_S}"
            tone = f"sine=frequency={400 + 100 * n}:duration={SCENE_S}"
            subprocess.run([*base, "-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", tone,
                            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                            "-g", "15", "-c:a", "aac", "-ar", "44100", "-ac", "2", "-shortest",
                            str(video)], check=True)  # fmt: skip
        videos.append(video)
    return episode, videos


@dataclass
class Job:
    job_id: str
    kind: str
    submitted: float
    finished: float | None = None
    status: str | None = None
    doc: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """From its acceptance to its last record, by the server's clock (seen from here,
        the end would be when it was last looked at)."""
        if self.status is None:
            return None
        times = [self.doc.get("updated_at"), *(s.get("updated_at") for s in self.doc["stages"])]
        ends = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times if t]
        created = self.doc.get("created_at")
        if not ends or not created:
            return None
        return (max(ends) - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()

    @property
    def reason(self) -> str | None:
        """Why it failed (or why its audio did), in the API's words."""
        error = self.doc.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error.get("code"))
        if self.doc.get("audio_status") == "FAILED":
            return str(self.doc.get("audio_error"))
        for stage in self.doc.get("stages") or []:
            if stage.get("error"):
                return str(stage["error"])
        return None


class Workload:
    """A tenant with a key, its inputs in the bucket, and the jobs it submitted."""

    def __init__(self, direct: Settings, api: str, key: str, videos: list[str]) -> None:
        self.direct = direct
        self.api = api
        self.videos = videos
        self.jobs: list[Job] = []
        self._http = httpx.AsyncClient(base_url=api, timeout=30,
                                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip
        self._n = 0

    @classmethod
    async def prepare(cls, direct: Settings, api: str, inputs: Path) -> Workload:
        episode, videos = await asyncio.to_thread(make_inputs, inputs)
        mongo = connect(direct)
        try:
            db = database(mongo, direct)
            store = KeyStore(db)
            await store.ensure_indexes()
            issued = await issue_key(store, WebhookSecretStore(db), TENANT)
            episodes = EpisodeStore(db)
            await episodes.ensure_indexes()
            async with MediaStore.from_settings(direct) as media:
                await media.ensure_bucket()
                await register_file(episode, episode_id=EPISODE, tenant_id=TENANT,
                                    filename=episode.name, store=episodes, media=media,
                                    ffmpeg=FFmpeg.from_settings(direct))  # fmt: skip
                keys = [f"ingest/{TENANT}/{v.name}" for v in videos]
                for key, path in zip(keys, videos, strict=True):
                    await media.upload_file(key, path)
        finally:
            await mongo.close()
        return cls(direct, api, issued.key, keys)

    async def close(self) -> None:
        await self._http.aclose()

    # -- submitting -----------------------------------------------------------------------------

    def spec(self, kind: str, *, tier: str = "basic", sound: str = "music") -> dict[str, Any]:
        """A new job of ``kind``; a production's audio comes from ``tier``, of ``sound``."""
        self._n += 1
        n = self._n
        if kind == "clip":
            # Distinct ranges: each clip is a cut of its own, not a cache hit.
            start = (n * 1000) % ((EPISODE_S - 5) * 1000)
            return {"job_kind": "clip", "episode_id": EPISODE, "start_ms": start,
                    "duration_ms": 2000 + n % 7 * 10}  # fmt: skip
        if kind == "merge":
            output = f"outputs/{TENANT}/merge-{uuid.uuid4().hex[:10]}.mp4"
            return {"job_kind": "merge", "operation": "concat_video", "inputs": self.videos,
                    "output_key": output}  # fmt: skip
        scenes = [{"prompt": f"scene {i} of job {n}", "duration_s": SCENE_S, "video": v}
                  for i, v in enumerate(self.videos)]  # fmt: skip
        return {"job_kind": "production", "prompt": f"a calm sea {n}", "scenes": scenes,
                "feature": {"audio": True, "audio_tier": tier},
                "audio_params": {"kind": sound}}  # fmt: skip

    async def submit(self, kind: str, spec: dict[str, Any] | None = None,
                     timeout_s: float = 120) -> Job:  # fmt: skip
        """POST /v1/jobs, retried while the API answers 5xx or not at all (as a client
        with an Idempotency-Key would): an outage may delay a submission, never lose it."""
        body = spec or self.spec(kind)
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        submitted = time.monotonic()
        deadline = submitted + timeout_s
        while True:
            try:
                resp = await self._http.post("/v1/jobs", json=body, headers=headers)
                if resp.status_code == 202:
                    break
                if resp.status_code < 500 and resp.status_code != 429:
                    raise AssertionError(f"submission refused: {resp.status_code} {resp.text}")
                last = f"{resp.status_code} {resp.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise AssertionError(f"could not submit a {kind} job in {timeout_s:g} s: {last}")
            await asyncio.sleep(0.5)
        job = Job(resp.json()["job_id"], kind, submitted)
        self.jobs.append(job)
        return job

    # -- following ------------------------------------------------------------------------------

    async def poll(self, job: Job) -> Job:
        try:
            resp = await self._http.get(f"/v1/jobs/{job.job_id}")
        except httpx.HTTPError:
            return job
        if resp.status_code == 200:
            job.doc = resp.json()
            status = job.doc.get("status")
            if status in FINAL and job.status is None:
                job.status, job.finished = status, time.monotonic()
        return job

    async def settle(self, jobs: Iterable[Job] | None = None, timeout_s: float = 240) -> None:
        """Until every job is in a final state; fail naming the ones that are not."""
        pending = [j for j in (self.jobs if jobs is None else jobs) if j.status is None]
        deadline = time.monotonic() + timeout_s
        while pending:
            for job in pending:
                await self.poll(job)
            pending = [j for j in pending if j.status is None]
            if not pending:
                return
            if time.monotonic() > deadline:
                late = {j.job_id: (j.kind, j.doc.get("status"), j.doc.get("stages"))
                        for j in pending[:5]}  # fmt: skip
                raise AssertionError(f"{len(pending)} jobs not final in {timeout_s:g} s: {late}")
            await asyncio.sleep(0.5)


# -- the audit ------------------------------------------------------------------------------------


def outcome_topics(s: Settings) -> list[str]:
    return [t.full_name(s.topic_prefix)
            for t in (TOPICS.clip_results, TOPICS.merge_results, TOPICS.jobs_results)]  # fmt: skip


async def audit(direct: Settings, watch: TopicWatch, jobs: Iterable[Job]) -> list[str]:
    """Every effect of every job once: what is wrong, in words (empty: all is well).
    ``watch`` follows :func:`outcome_topics` from their start."""
    problems: list[str] = []
    # Counted by event id: a record sent again after a crash or a lost ack carries the id
    # of the first, and every consumer's ledger skips it (no second effect).
    clips = Counter(e.request_id for e in _distinct(watch.events((ClipReady, ClipFailed))))
    merges = Counter(e.job_id for e in _distinct(watch.events((MergeCompleted, MergeFailed))))
    ends = Counter(e.job_id for e in _distinct(watch.events((JobCompleted, JobFailed))))
    mongo = connect(direct)
    try:
        db = database(mongo, direct)
        async with MediaStore.from_settings(direct) as media:
            for job in jobs:
                where = f"{job.kind} job {job.job_id}"
                if job.status not in FINAL:
                    problems.append(f"{where}: not final ({job.doc.get('status')})")
                    continue
                if job.status == "FAILED" and not job.reason:
                    problems.append(f"{where}: failed without a reason")
                if job.kind == "clip":
                    problems += await _clip(db, media, job, clips[job.job_id])
                elif job.kind == "merge":
                    problems += await _merge(db, media, job, merges[job.job_id])
                else:
                    problems += await _production(db, media, job, ends[job.job_id])
    finally:
        await mongo.close()
    return problems


def _distinct(events: list[Any]) -> list[Any]:
    return list({e.event_id: e for e in events}.values())


async def _outputs(db: Any, job_id: str) -> list[dict[str, Any]]:
    """What the job's stage records say the stages emitted."""
    return [o async for d in db[STAGES].find({"job_id": job_id}) for o in d.get("outputs") or []]


async def _clip(db: Any, media: MediaStore, job: Job, events: int) -> list[str]:
    where = f"clip job {job.job_id}"
    out = [] if events == 1 else [f"{where}: {events} outcome events"]
    if job.status == "COMPLETED":
        keys = [o["s3_key"] for o in await _outputs(db, job.job_id) if "s3_key" in o]
        if len(keys) != 1:
            return [*out, f"{where}: outputs {keys}"]
        if await db[AUDIO_CLIPS].count_documents({"s3_key": keys[0]}) != 1:
            out.append(f"{where}: not one clip record for {keys[0]}")
        if await media.head(keys[0]) is None:
            out.append(f"{where}: its clip object is missing")
    return out


async def _merge(db: Any, media: MediaStore, job: Job, events: int) -> list[str]:
    where = f"merge job {job.job_id}"
    out = [] if events == 1 else [f"{where}: {events} outcome events"]
    if job.status == "COMPLETED":
        keys = [o["s3_key"] for o in await _outputs(db, job.job_id) if "s3_key" in o]
        if len(keys) != 1:
            return [*out, f"{where}: outputs {keys}"]
        if await media.head(keys[0]) is None:
            out.append(f"{where}: its output object is missing")
    return out


async def _production(db: Any, media: MediaStore, job: Job, events: int) -> list[str]:
    where = f"production job {job.job_id}"
    out = [] if events == 1 else [f"{where}: {events} job outcome events"]
    # Each stage's outcome recorded once per step: a stage that answered twice shows here.
    steps: Counter[tuple[Any, ...]] = Counter()
    async for doc in db[OUTCOMES].find({"job_id": job.job_id}):
        body = doc.get("body") or {}
        steps[(body.get("event_type"), body.get("job_id"), body.get("step"))] += 1
    out += [f"{where}: outcome {k} recorded {n} times" for k, n in steps.items() if n > 1]
    if job.status == "COMPLETED":
        # One muxed result per version; none when the audio failed (the video is the result).
        results = await media.list_keys(f"renders/{job.job_id}/result-")
        muxed = job.doc.get("audio_status") == "COMPLETED"
        if len(results) != (int(job.doc.get("version") or 1) if muxed else 0):
            out.append(f"{where}: result objects {results}")
        result = (job.doc.get("outputs") or {}).get("result")
        if result is None or await media.head(result) is None:
            out.append(f"{where}: its result {result} is not in storage")
    return out
