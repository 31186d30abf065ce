"""The production job's lifecycle as pure functions.

A job's state is its document (what it was created with, and the summary its claim
winners wrote) folded with the outcomes recorded for it, in the order they were recorded:
``apply(job, outcome)`` says how one outcome (``video.rendered``, ``audio.*``,
``merge.*``, a retry) changes the job, as a guard that must hold (so a duplicate or late
outcome changes nothing) and the fields to set; ``fold`` applies them all.
``next_actions(state)`` says which events the job needs now; the store claims each
action once (a unique insert), so two workers, a redelivery or outcomes in any order
request the mux once and complete the job once. Outcomes are appended, never written
into one shared document, so no two writers ever read-modify-write the same fields.

The job document (collection ``jobs``, written by the submitter and this service)::

    status        PENDING | RUNNING | COMPLETED | FAILED | CANCELLED
    spec          the production spec (schemas.production)
    video         {status: WAITING|READY|FAILED, source: scenes|single|upstream, key, error}
    audio         {status: PENDING|READY|FAILED|NOT_REQUESTED, attempt, error,
                   music: {a<n>: [keys]}, voice: {a<n>: [keys]},
                   soundtrack: {a<n>: key}, voicetrack: {a<n>: key}}
    results       {v<n>: key}: the muxed MP4 of each version (version = audio attempt)
    actions       {name: {event, sent, at}}: every event the lifecycle asked for, once
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas import Event
from schemas.audio import AudioFailed, AudioJobSubmitted, AudioParams, AudioRendered, Scene
from schemas.errors import ErrorInfo
from schemas.job import JobCompleted, JobFailed, ProductionJobSpec
from schemas.merge import Loudness, MergeCompleted, MergeFailed, MergeParams, MergeRequested
from schemas.names import VOICEOVER_SUFFIX, Producer
from schemas.production import ProductionFields, UpstreamVideo
from schemas.video import VideoJobSubmitted, VideoRendered

Doc = dict[str, Any]
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
AudioStatus = Literal["COMPLETED", "FAILED", "NOT_REQUESTED"]


@dataclass(frozen=True)
class Update:
    guard: Doc  # must still match, else the outcome was already applied (or is stale)
    set: Doc
    note: str  # for the job's timeline


@dataclass(frozen=True)
class Retry:
    """The job's audio is made again: attempt ``attempt`` (written by the job API)."""

    attempt: int


@dataclass(frozen=True)
class VideoOverdue:
    """The upstream video did not arrive within ``seconds``."""

    seconds: int


@dataclass(frozen=True)
class Action:
    name: str  # unique per job: claimed once
    event: Event | None  # what to emit (None: only the status change)
    status: str | None = None  # the job's status once this action is claimed
    fields: Doc = field(default_factory=dict)  # more fields set with the claim


# -- a new job ------------------------------------------------------------------------------


def new_job_fields(spec: ProductionFields, correlation_id: str) -> Doc:
    """The lifecycle's part of a new job's document."""
    if spec.scenes and spec.scenes[0].video is not None:
        keys = [s.video for s in spec.scenes]
        video: Doc = {"source": "scenes", "inputs": keys}
        if len(keys) == 1:
            video.update(status="READY", key=keys[0])
        else:
            video.update(status="WAITING")
    elif isinstance(spec.video, UpstreamVideo):
        video = {"source": "upstream", "status": "WAITING"}
    else:
        video = {"source": "single", "status": "READY", "key": spec.video}
    audio: Doc = {"status": "PENDING" if spec.feature.audio else "NOT_REQUESTED", "attempt": 1}
    return {
        # Running from the start: no later write may race a cancel back to RUNNING.
        "status": "RUNNING",
        "spec": spec.model_dump(mode="json"),
        "correlation_id": correlation_id,
        "video": video,
        "audio": audio,
        "results": {},
        "actions": {},
        "timeline": [],
    }


# -- outcomes -------------------------------------------------------------------------------


Outcome = Event | Retry | VideoOverdue


def apply(job: Doc, event: Outcome) -> Update | None:
    """How ``event`` changes ``job``; None when it does not apply (stale, unknown step)."""
    audio = job.get("audio", {})
    attempt = f"a{audio.get('attempt', 1)}"
    if isinstance(event, VideoOverdue):
        why = f"the video did not arrive within {event.seconds} s"
        return Update({"video.status": "WAITING"},
                      {"video.status": "FAILED", "video.error": why}, why)  # fmt: skip
    if isinstance(event, Retry):
        again = {"audio.attempt": event.attempt, "audio.status": "PENDING", "audio.error": None}
        return Update({}, again, f"audio retry: attempt {event.attempt}")
    if isinstance(event, VideoRendered):
        return Update({"video.status": "WAITING"},
                      {"video.status": "READY", "video.key": event.s3_key,
                       "video.duration_s": event.duration_s}, "video rendered")  # fmt: skip
    if isinstance(event, AudioRendered | AudioFailed):
        if f"a{event.attempt}" != attempt or audio.get("status") != "PENDING":
            return None  # an older attempt's outcome, or audio already settled
        part = "voice" if event.job_id.endswith(VOICEOVER_SUFFIX) else "music"
        if isinstance(event, AudioFailed):
            return Update({"audio.status": "PENDING", "audio.attempt": event.attempt},
                          {"audio.status": "FAILED", "audio.error": event.error.message},
                          f"{part} generation failed ({event.error.code})")  # fmt: skip
        keys = [s.s3_key for s in sorted(event.segments, key=lambda s: s.scene_index)]
        silent = [s.scene_index for s in event.segments if s.silent_fallback]
        return Update({f"audio.{part}.{attempt}": None},
                      {f"audio.{part}.{attempt}": keys, f"audio.silent.{part}": silent},
                      f"{part} rendered")  # fmt: skip
    if isinstance(event, MergeCompleted | MergeFailed):
        return _apply_merge(job, event)
    return None


def _apply_merge(job: Doc, event: MergeCompleted | MergeFailed) -> Update | None:
    step = event.step or ""
    kind, _, tag = step.partition("-")
    ok = isinstance(event, MergeCompleted)
    key = event.s3_key if isinstance(event, MergeCompleted) else None
    why = event.error.message if isinstance(event, MergeFailed) else ""
    if kind == "concat":
        if ok:
            return Update({"video.status": "WAITING"},
                          {"video.status": "READY", "video.key": key}, "videos joined")  # fmt: skip
        failed = {"video.status": "FAILED", "video.error": why}
        return Update({"video.status": "WAITING"}, failed, "videos could not be joined")
    if kind in ("soundtrack", "voicetrack"):
        if tag != f"a{job.get('audio', {}).get('attempt', 1)}":
            return None
        if ok:
            return Update({f"audio.{kind}.{tag}": None}, {f"audio.{kind}.{tag}": key},
                          f"{kind} mixed")  # fmt: skip
        return Update({"audio.status": "PENDING"},
                      {"audio.status": "FAILED", "audio.error": f"the {kind} could not be mixed"},
                      f"{kind} failed")  # fmt: skip
    if kind == "mux":
        if ok:
            return Update({f"results.{tag}": None}, {f"results.{tag}": key}, f"result {tag} muxed")
        return Update({f"results.{tag}": None}, {f"results.{tag}": False,
                      "audio.mux_error": why}, f"result {tag} could not be muxed")  # fmt: skip
    return None


_MISSING = object()


def _get(doc: Doc, path: str) -> Any:
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def holds(doc: Doc, guard: Doc) -> bool:
    """A guard, as MongoDB would read it: equality, ``$in``, and ``None`` for "missing"."""
    for path, want in guard.items():
        got = _get(doc, path)
        if isinstance(want, dict) and "$in" in want:
            if got not in want["$in"]:
                return False
        elif want is None:
            if got is not _MISSING and got is not None:
                return False
        elif got != want:
            return False
    return True


def put(doc: Doc, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def fold(job: Doc, outcomes: Sequence[Outcome]) -> tuple[Doc, list[str]]:
    """The job's state after ``outcomes`` (in the order recorded), and what each did."""
    state = copy.deepcopy(job)
    notes = []
    for outcome in outcomes:
        update = apply(state, outcome)
        if update is not None and holds(state, update.guard):
            for path, value in update.set.items():
                put(state, path, copy.deepcopy(value))
            notes.append(update.note)
    return state, notes


# -- what the job needs next ------------------------------------------------------------------


def next_actions(job: Doc) -> list[Action]:
    if job.get("status") in TERMINAL:
        return []
    spec = ProductionJobSpec.model_validate(job["spec"])
    video, audio = job.get("video", {}), job.get("audio", {})
    ctx = _Ctx(job, spec)
    actions: list[Action] = []
    if video.get("status") == "FAILED":
        return [*actions, ctx.fail(f"the video failed: {video.get('error') or 'unknown'}")]
    if video.get("status") == "WAITING":
        if video.get("source") == "upstream":
            actions.append(Action("video", ctx.video_job()))
        else:
            actions.append(ctx.merge("concat", "concat_video", video["inputs"],
                                     f"renders/{ctx.job_id}/video.mp4"))  # fmt: skip
    n = int(audio.get("attempt", 1))
    tag = f"a{n}"
    if audio.get("status") == "PENDING":
        actions += ctx.audio_actions(n)
        music = audio.get("music", {}).get(tag)
        voice = audio.get("voice", {}).get(tag)
        if music is not None:
            fade = spec.audio_params.fade_duration
            actions.append(ctx.merge(f"soundtrack-{tag}", "crossfade_audio", music,
                                     f"audio/{ctx.job_id}/{tag}-soundtrack.mp3",
                                     MergeParams(fade_duration_s=fade)))  # fmt: skip
        if voice is not None:
            actions.append(ctx.merge(f"voicetrack-{tag}", "crossfade_audio", voice,
                                     f"audio/{ctx.job_id}/{tag}-voiceover.mp3",
                                     MergeParams(fade_duration_s=0.0)))  # fmt: skip
        if _audio_ready(audio, spec, tag):
            audio = {**audio, "status": "READY"}
            ctx = _Ctx({**job, "audio": audio}, spec)
    if video.get("status") != "READY":
        return actions
    if audio.get("status") == "READY" and spec.audio_params.merge_with_video:
        result = job.get("results", {}).get(f"v{n}")
        if result is None:
            params = MergeParams(
                sync_mode=spec.audio_params.sync_mode,
                audio_key=audio["soundtrack"][tag] if "soundtrack" in audio else None,
                voiceover_key=audio.get("voicetrack", {}).get(tag),
                loudness=(
                    Loudness(integrated_lufs=spec.audio_params.loudness)
                    if spec.audio_params.loudness is not None
                    else None
                ),
            )
            actions.append(ctx.merge(f"mux-v{n}", "mux", [video["key"]],
                                     f"renders/{ctx.job_id}/result-v{n}.mp4", params))  # fmt: skip
            return actions
        if result is False:
            return [*actions, ctx.complete(n, audio_failed="the audio could not be merged")]
        return [*actions, ctx.complete(n)]
    if audio.get("status") == "READY":
        return [*actions, ctx.complete(n)]
    if audio.get("status") in ("FAILED", "NOT_REQUESTED"):
        return [*actions, ctx.complete(n, audio_failed=audio.get("error"))]
    return actions


def _audio_ready(audio: Mapping[str, Any], spec: ProductionFields, tag: str) -> bool:
    music_done = tag in audio.get("soundtrack", {})
    voice_done = not spec.feature.voiceover or tag in audio.get("voicetrack", {})
    return music_done and voice_done


class _Ctx:
    def __init__(self, job: Doc, spec: ProductionFields) -> None:
        self.job, self.spec = job, spec
        self.job_id: str = job["job_id"]
        self.tenant_id: str = job["tenant_id"]
        self.correlation_id: str = job.get("correlation_id") or self.job_id

    def _envelope(self) -> Doc:
        return {"tenant_id": self.tenant_id, "correlation_id": self.correlation_id,
                "producer": Producer.LIFECYCLE}  # fmt: skip

    def merge(
        self, step: str, operation: str, inputs: list[str], output: str,
        params: MergeParams | None = None,
    ) -> Action:  # fmt: skip
        event = MergeRequested(job_id=self.job_id, operation=operation, inputs=inputs,  # type: ignore[arg-type]
                               output_key=output, params=params or MergeParams(), step=step,
                               **self._envelope())  # fmt: skip
        return Action(step, event)

    def video_job(self) -> Event:
        assert isinstance(self.spec.video, UpstreamVideo)
        return VideoJobSubmitted(job_id=self.job_id, prompt=self.spec.prompt,
                                 duration_s=self.spec.total_seconds() or 1.0,
                                 width=self.spec.video.width, height=self.spec.video.height,
                                 **self._envelope())  # fmt: skip

    def audio_actions(self, attempt: int) -> list[Action]:
        spec, tag = self.spec, f"a{attempt}"
        ap = spec.audio_params
        prompt = ap.prompt or spec.prompt
        if spec.scenes:
            scenes = [Scene(index=i, prompt=f"{prompt}. {s.prompt}"[:2000], duration_s=s.duration_s)
                      for i, s in enumerate(spec.scenes)]  # fmt: skip
        else:
            scenes = [Scene(index=0, prompt=prompt, duration_s=spec.duration_seconds or 1.0)]
        params = AudioParams(error_strategy=ap.error_strategy)
        actions = [Action(f"audio-{tag}", AudioJobSubmitted(
            job_id=self.job_id, tier=spec.feature.audio_tier, kind=ap.kind, scenes=scenes,
            params=params, attempt=attempt, **self._envelope()))]  # fmt: skip
        if spec.feature.voiceover:
            lines = [Scene(index=i, prompt="narration", duration_s=s.duration_s, text=s.text)
                     for i, s in enumerate(spec.scenes)]  # fmt: skip
            actions.append(Action(f"voiceover-{tag}", AudioJobSubmitted(
                job_id=self.job_id + VOICEOVER_SUFFIX, tier=spec.feature.audio_tier,
                kind="voiceover", scenes=lines, params=params, attempt=attempt,
                **self._envelope())))  # fmt: skip
        return actions

    def complete(self, version: int, audio_failed: str | None = None) -> Action:
        video, audio = self.job["video"], self.job["audio"]
        outputs = {"video": video["key"]}
        tag = f"a{version}"
        status = audio.get("status")
        audio_status: AudioStatus
        if audio_failed is None and status == "READY":
            outputs["audio"] = audio["soundtrack"][tag]
            if audio.get("voicetrack", {}).get(tag):
                outputs["voiceover"] = audio["voicetrack"][tag]
            result = self.job.get("results", {}).get(f"v{version}")
            outputs["result"] = result if isinstance(result, str) else video["key"]
            audio_status, error = "COMPLETED", None
        elif status == "NOT_REQUESTED":
            outputs["result"] = video["key"]
            audio_status, error = "NOT_REQUESTED", None
        else:
            outputs["result"] = video["key"]
            audio_status = "FAILED"
            error = f"Audio generation failed: {audio_failed or 'unknown reason'}"
        event = JobCompleted(job_id=self.job_id, job_kind="production", outputs=outputs,
                             version=version, audio_status=audio_status, audio_error=error,
                             **self._envelope())  # fmt: skip
        fields = {"outputs": outputs, "audio_status": audio_status, "audio_error": error,
                  "version": version}  # fmt: skip
        return Action(f"complete-v{version}", event, status="COMPLETED", fields=fields)

    def fail(self, why: str) -> Action:
        error = ErrorInfo(code="video_failed", message=why, retryable=False, attempts=1)
        event = JobFailed(job_id=self.job_id, job_kind="production", error=error,
                          **self._envelope())  # fmt: skip
        return Action("fail", event, status="FAILED", fields={"error": error.model_dump()})
