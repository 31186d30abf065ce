"""The merge stage: ``merge.requested`` in, ``merge.completed`` out (a merge that fails
raises, and the stage runner answers ``merge.failed``). Pure logic on typed events and
ports: the media store and the merger's ffmpeg tools.

Every input is looked at first (a HEAD and one ffprobe each, concurrently), so a missing,
unreadable, too long or wrong kind of input fails with its own code before any heavy
work. Then one ffmpeg run makes the output in a scratch directory (two for loudness
normalisation: measure, then apply), which is uploaded to ``output_key``. That key comes
from the request, so a redelivered request rewrites the same object; the output's
figures are checkpointed, so a redelivery after the upload answers without merging again.

The old video-merger Lambda's contract maps one to one: ``input_videos`` are the
``inputs`` of a ``concat_video``, ``output_key`` is ``output_key``, and its answer
``{s3_key, duration, size}`` is ``merge.completed``'s ``s3_key``, ``duration_ms`` and
``size_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from schemas import ErrorInfo, Event
from schemas.codes import Code
from schemas.merge import MergeCompleted, MergeFailed, MergeRequested
from schemas.names import Producer, Stage
from services.common.context import StageContext
from services.common.errors import PermanentError
from services.common.ports import Clock, MediaPort, ObjectInfo
from services.merger import audio_graph, recipes
from services.merger.compat import canvas_for, copy_mismatch
from services.merger.concat_list import concat_list, local_name
from services.merger.errors import MergeRejected
from services.merger.faststart import moov_first_or_as_written
from services.merger.formats import (
    AUDIO_OUTPUTS,
    VIDEO_ENCODER_ARGS,
    VIDEO_OUTPUTS,
    AudioOutput,
    VideoOutput,
    extension,
)
from services.merger.media import MediaInfo, Unusable
from services.merger.progress import Progress
from services.merger.sources import Limits, Source, check_input, length_ms, sources_for
from services.merger.timing import (
    effective_fade_ms,
    fade_lengths,
    joined_ms,
    plan_sync,
    timeout_for,
)

log = logging.getLogger(__name__)

OnTime = Callable[[float], Awaitable[None]]
# ffprobe reads only an input's header and index; its URL need not live long.
PROBE_URL_EXPIRY_S = 600
OUTPUT_STEP = "output"


class MergeTools(Protocol):
    """The merger's ffmpeg adapter (``services.merger.tools.FFmpegTools``)."""

    async def probe(self, source: str | os.PathLike[str]) -> MediaInfo: ...

    async def run(self, args: Sequence[str], timeout_s: float, on_time: OnTime) -> None: ...

    async def run_for_stderr(
        self, args: Sequence[str], timeout_s: float, on_time: OnTime
    ) -> str: ...

    def workdir(self) -> AbstractAsyncContextManager[Path]: ...

    async def write_text(self, path: Path, text: str) -> None: ...


@dataclass(frozen=True)
class MergeConfig:
    limits: Limits
    video_encoder: str = "libx264"
    timeout_factor: float = 3.0
    timeout_min_s: float = 60.0
    probe_concurrency: int = 8
    download_concurrency: int = 4


@dataclass(frozen=True)
class Merged:
    duration_ms: int
    size_bytes: int
    copied: bool

    def to_json(self) -> dict[str, Any]:
        return {"duration_ms": self.duration_ms, "size_bytes": self.size_bytes,
                "copied": self.copied}  # fmt: skip

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Merged:
        return cls(int(doc["duration_ms"]), int(doc["size_bytes"]), bool(doc["copied"]))


@dataclass
class _Job:
    event: MergeRequested
    ctx: StageContext
    sources: list[Source]
    heads: list[ObjectInfo]
    infos: list[MediaInfo]
    progress: Progress

    def lengths(self) -> list[int]:
        return [length_ms(s, i) for s, i in zip(self.sources, self.infos, strict=True)]


class MergeHandler:
    def __init__(
        self,
        *,
        media: MediaPort,
        tools: MergeTools,
        config: MergeConfig,
        clock: Clock = time.monotonic,
    ) -> None:
        self._media = media
        self._tools = tools
        self._config = config
        self._clock = clock

    async def __call__(self, event: Event, ctx: StageContext) -> Sequence[Event]:
        if not isinstance(event, MergeRequested):
            raise TypeError(f"the merger cannot handle {event.event_type}")
        saved = await ctx.checkpoint(OUTPUT_STEP)
        if saved is not None:
            done = Merged.from_json(saved)
            stored = await self._media.head(event.output_key)
            if stored is not None and stored.size == done.size_bytes:
                return [self._completed(event, done)]
        sources = sources_for(event, self._config.limits)
        await ctx.record({"operation": event.operation, "step": event.step,
                          "inputs": len(event.inputs)})  # fmt: skip
        progress = Progress(ctx.progress, self._clock)
        await progress.at(0, "checking inputs", force=True)
        heads, infos = await self._inspect(sources)
        job = _Job(event, ctx, sources, heads, infos, progress)
        operations = {"concat_video": self._concat, "crossfade_audio": self._crossfade,
                      "mux": self._mux}  # fmt: skip
        merged = await operations[event.operation](job)
        await ctx.save(OUTPUT_STEP, merged.to_json())
        await ctx.record({"copied": merged.copied, "duration_ms": merged.duration_ms})
        await progress.at(100, "done", force=True)
        return [self._completed(event, merged)]

    def _completed(self, event: MergeRequested, merged: Merged) -> MergeCompleted:
        return MergeCompleted(
            job_id=event.job_id,
            tenant_id=event.tenant_id,
            correlation_id=event.correlation_id,
            producer=Producer.MERGER,
            s3_key=event.output_key,
            duration_ms=merged.duration_ms,
            size_bytes=merged.size_bytes,
            operation=event.operation,
            step=event.step,
            copied=merged.copied,
        )

    # -- inputs -------------------------------------------------------------------------------

    async def _inspect(self, sources: list[Source]) -> tuple[list[ObjectInfo], list[MediaInfo]]:
        bound = asyncio.Semaphore(self._config.probe_concurrency)

        async def one(source: Source) -> tuple[ObjectInfo, MediaInfo]:
            async with bound:
                head = await self._media.head(source.key)
                if head is None:
                    raise MergeRejected(Code.INPUT_MISSING, f"{source.label} is not in storage")
                url = await self._media.presign_get(source.key, PROBE_URL_EXPIRY_S)
                try:
                    info = await self._tools.probe(url)
                except Unusable as exc:
                    message = f"{source.label} is not a readable audio or video file"
                    raise MergeRejected(Code.INPUT_NOT_MEDIA, message) from exc
            check_input(source, info, self._config.limits)
            return head, info

        results = await asyncio.gather(*(one(s) for s in sources), return_exceptions=True)
        found: list[tuple[ObjectInfo, MediaInfo]] = []
        for result in results:  # the first failure in input order, whichever came first
            if isinstance(result, BaseException):
                raise result
            found.append(result)
        return [h for h, _ in found], [i for _, i in found]

    async def _urls(self, job: _Job, expected_ms: int) -> list[str]:
        """URLs ffmpeg reads the inputs from, valid for as long as a run may take."""
        expiry = round(self._timeout(job, expected_ms)) + 600
        return [await self._media.presign_get(s.key, expiry) for s in job.sources]

    def _timeout(self, job: _Job, expected_ms: int) -> float:
        budget = timeout_for(expected_ms, self._config.timeout_factor, self._config.timeout_min_s)
        return min(budget, max(job.ctx.remaining_s(), 1.0))

    async def _run(
        self, job: _Job, args: list[str], expected_ms: int, lo: int, hi: int, note: str
    ) -> None:
        on_time = job.progress.phase(lo, hi, expected_ms, note)
        await self._tools.run(args, self._timeout(job, expected_ms), on_time)

    async def _deliver(
        self,
        job: _Job,
        out: Path,
        fmt: VideoOutput | AudioOutput,
        copied: bool,
        make: Awaitable[None],
    ) -> Merged:
        """``make`` writes ``out``, uploaded as it grows; the finished file is checked
        before the upload completes, so an unreadable one is never stored. An MP4's index
        goes in front of its data on the way (faststart.py)."""
        made: list[MediaInfo] = []

        async def check() -> None:
            await job.progress.at(96, "uploading", force=True)
            try:
                made.append(await self._tools.probe(out))
            except Unusable as exc:
                raise PermanentError(f"the merged file is unreadable: {exc}",
                                     code=Code.FFMPEG_FAILED) from exc  # fmt: skip

        finish = moov_first_or_as_written if fmt.moov_first else None
        size = await self._media.upload_growing(
            job.event.output_key, out, make, fmt.content_type, finish, check
        )
        return Merged(made[0].duration_ms or 0, size, copied)

    async def _pass_through(self, job: _Job) -> Merged:
        """One input already in the requested format: the object is copied as it is."""
        key = job.sources[0].key
        if key != job.event.output_key:
            await self._media.copy(key, job.event.output_key)
        return Merged(length_ms(job.sources[0], job.infos[0]), job.heads[0].size, True)

    # -- concat_video -------------------------------------------------------------------------

    async def _concat(self, job: _Job) -> Merged:
        fmt = VIDEO_OUTPUTS[extension(job.event.output_key)]
        first = job.infos[0]
        if len(job.infos) == 1 and extension(job.sources[0].key) == fmt.ext:
            return await self._pass_through(job)
        reason = copy_mismatch(job.infos)
        if reason is None and not fmt.can_copy(
            first.video.codec if first.video else None, first.audio.codec if first.audio else None
        ):
            reason = f"the inputs' codecs cannot be stored in a .{fmt.ext} file as they are"
        if reason is None:
            return await self._concat_copy(job)
        log.info("merge %s: normalising the inputs: %s", job.event.job_id, reason)
        await job.ctx.record({"normalised_because": reason})
        return await self._concat_encode(job)

    async def _concat_copy(self, job: _Job) -> Merged:
        fmt = VIDEO_OUTPUTS[extension(job.event.output_key)]
        total = sum(job.lengths())
        names = [local_name(n, s.key) for n, s in enumerate(job.sources)]
        async with self._tools.workdir() as tmp:
            await self._download(job, tmp, names, 0, 40)
            listing = tmp / "inputs.ffconcat"
            await self._tools.write_text(listing, concat_list(names))
            out = tmp / f"merged.{fmt.ext}"
            has_audio = job.infos[0].audio is not None
            args = recipes.concat_copy(listing, out, fmt, has_audio)
            made = self._run(job, args, total, 40, 95, "joining by stream copy")
            return await self._deliver(job, out, fmt, True, made)

    async def _download(self, job: _Job, tmp: Path, names: list[str], lo: int, hi: int) -> None:
        bound = asyncio.Semaphore(self._config.download_concurrency)
        done = 0

        async def one(source: Source, name: str) -> None:
            nonlocal done
            async with bound:
                await self._media.download_file(source.key, tmp / name)
            done += 1
            await job.progress.at(lo + (hi - lo) * done // len(names), "reading inputs")

        await asyncio.gather(*(one(s, n) for s, n in zip(job.sources, names, strict=True)))

    async def _concat_encode(self, job: _Job) -> Merged:
        fmt = VIDEO_OUTPUTS[extension(job.event.output_key)]
        lengths = job.lengths()
        total = sum(lengths)
        urls = await self._urls(job, total)
        canvas = canvas_for(job.infos)
        await job.ctx.record({"canvas": {"width": canvas.width, "height": canvas.height,
                                         "fps": canvas.fps_text}})  # fmt: skip
        async with self._tools.workdir() as tmp:
            out = tmp / f"merged.{fmt.ext}"
            args = recipes.concat_encode(
                urls, lengths, [i.audio is not None for i in job.infos], canvas,
                VIDEO_ENCODER_ARGS[self._config.video_encoder], out, fmt,
            )  # fmt: skip
            made = self._run(job, args, total, 0, 95, "normalising and joining")
            return await self._deliver(job, out, fmt, False, made)

    # -- crossfade_audio ----------------------------------------------------------------------

    async def _crossfade(self, job: _Job) -> Merged:
        params = job.event.params
        fmt = AUDIO_OUTPUTS[extension(job.event.output_key)]
        first = job.infos[0].audio
        assert first is not None, "checked by check_input"
        if (
            len(job.infos) == 1
            and params.loudness is None
            and extension(job.sources[0].key) == fmt.ext
            and first.codec in fmt.codecs
        ):
            return await self._pass_through(job)
        lengths = job.lengths()
        fade = effective_fade_ms(params.fade_duration_s, params.crossfade_ms,
                                 params.model_fields_set)  # fmt: skip
        fades = fade_lengths(lengths, fade)
        total = joined_ms(lengths, fades, params.fade_mode)
        await job.ctx.record({"fades_ms": fades, "fade_mode": params.fade_mode})
        layout = "mono" if all(i.audio and i.audio.channels == 1 for i in job.infos) else "stereo"
        rate = first.sample_rate or audio_graph.OUTPUT_RATE
        chains, label = audio_graph.joined(
            list(range(len(lengths))), lengths, fades, params.fade_mode, params.curve, rate, layout
        )
        urls = await self._urls(job, total)
        lo = 0
        if params.loudness is not None:
            lo = 30
            measured = await self._measure(job, urls, chains, label, total, 0, lo)
            if measured is not None:
                chain, label = audio_graph.apply_chain(label, params.loudness, measured, layout)
                chains = [*chains, chain]
        async with self._tools.workdir() as tmp:
            out = tmp / f"merged.{fmt.ext}"
            args = recipes.audio_only(urls, chains, label, out, fmt)
            made = self._run(job, args, total, lo, 95, f"joining with {params.fade_mode}s")
            return await self._deliver(job, out, fmt, False, made)

    async def _measure(
        self, job: _Job, urls: list[str], chains: list[str], label: str, expected_ms: int,
        lo: int, hi: int,
    ) -> audio_graph.Measured | None:  # fmt: skip
        """loudnorm's first pass over the graph's output; None for silence, which no gain
        can bring to a target."""
        target = job.event.params.loudness
        assert target is not None
        args = recipes.measure(urls, [*chains, audio_graph.measure_chain(label, target)])
        on_time = job.progress.phase(lo, hi, expected_ms, "measuring loudness")
        stderr = await self._tools.run_for_stderr(args, self._timeout(job, expected_ms), on_time)
        try:
            measured = audio_graph.parse_measured(stderr)
        except (ValueError, KeyError) as exc:
            raise PermanentError(f"loudness measurement: {exc}", code=Code.FFMPEG_FAILED) from exc
        await job.ctx.record({"loudness": {"measured_lufs": measured.input_i,
                                           "measured_tp": measured.input_tp}})  # fmt: skip
        return None if measured.silent else measured

    # -- mux ----------------------------------------------------------------------------------

    async def _mux(self, job: _Job) -> Merged:
        params = job.event.params
        fmt = VIDEO_OUTPUTS[extension(job.event.output_key)]
        video = job.infos[0].video
        assert video is not None, "checked by check_input"
        if not fmt.can_copy(video.codec, None):
            raise MergeRejected(
                Code.INVALID_MERGE_REQUEST,
                f"a {video.codec} video cannot be stored in a .{fmt.ext} file without "
                "re-encoding it; ask for a .mkv output",
            )
        video_ms, audio_ms = job.lengths()[:2]
        plan = plan_sync(video_ms, audio_ms, params.sync_mode)
        sync = {"mode": params.sync_mode, "video_ms": video_ms, "audio_ms": audio_ms,
                "tempo": list(plan.tempo)}  # fmt: skip
        await job.ctx.record({"sync": sync})
        urls = await self._urls(job, video_ms)
        voiced = len(urls) > 2
        chains, label = audio_graph.soundtrack(1, 2 if voiced else None, plan, "stereo")
        lo = 0
        if params.loudness is not None:
            lo = 30
            # The same graph over the audio inputs alone, numbered from 0.
            m_chains, m_label = audio_graph.soundtrack(0, 1 if voiced else None, plan, "stereo")
            measured = await self._measure(job, urls[1:], m_chains, m_label, video_ms, 0, lo)
            if measured is not None:
                chain, label = audio_graph.apply_chain(label, params.loudness, measured, "stereo")
                chains = [*chains, chain]
        async with self._tools.workdir() as tmp:
            out = tmp / f"merged.{fmt.ext}"
            args = recipes.mux(urls[0], urls[1:], chains, label, out, fmt)
            made = self._run(job, args, video_ms, lo, 95, f"muxing ({params.sync_mode})")
            return await self._deliver(job, out, fmt, True, made)


def record_key(event: Event) -> str:
    """The stage record a merge reports to: one per step of a job (``merge.mux``), so a
    job's merges do not overwrite each other's status."""
    step = getattr(event, "step", None)
    return f"{Stage.MERGE}.{step}" if step else Stage.MERGE


def merge_failed(event: Event, error: ErrorInfo) -> Event:
    """The failure answer for any merge request the stage could not serve."""
    assert isinstance(event, MergeRequested)
    return MergeFailed(
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.MERGER,
        error=error,
        operation=event.operation,
        step=event.step,
    )
