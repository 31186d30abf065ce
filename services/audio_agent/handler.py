"""The audio stage: ``audio.job.submitted`` in, ``audio.rendered`` out (a job that gives
up raises, and the stage runner answers ``audio.failed``). Pure logic on typed events and
ports: providers, media store, ffmpeg, the generation cache.

Each scene is a checkpointed step. A provider request is recorded (provider, request id,
its URLs) before the agent waits on it, so a retry or a redelivery after a crash resumes
polling that request instead of paying for a new one; a finished scene is never made
again for the same event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from schemas import ErrorInfo, Event
from schemas.audio import AudioFailed, AudioJobSubmitted, AudioRendered, AudioSegment, Scene
from schemas.names import Producer, Stage
from services.audio_agent import render
from services.audio_agent.cache import CacheEntry, GenerationCache, cache_key, cache_object_key
from services.audio_agent.prompts import enhance
from services.audio_agent.providers.base import (
    GenerationRequest,
    InvalidGeneration,
    Provider,
    ProviderError,
    ProviderRejected,
    Ticket,
)
from services.audio_agent.tiers import Route, TierMap
from services.common.context import StageContext
from services.common.errors import PermanentError, operator_detail, public_text
from services.common.keys import audio_key
from services.common.media_types import content_type_for
from services.common.obs import metrics
from services.common.ports import FFmpegPort, MediaPort

log = logging.getLogger(__name__)

WORKDIR_PREFIX = "tapedeck-audio-"
# How long a presigned URL of the previous scene must live for a provider to fetch it.
CONTINUATION_URL_EXPIRY_S = 3600


@dataclass(frozen=True)
class AudioConfig:
    tiers: TierMap
    scene_deadline_s: float = 600.0
    scene_concurrency: int = 3
    cache_enabled: bool = True


@dataclass(frozen=True)
class ScenePlan:
    scene: Scene
    route: Route
    provider: Provider
    request: GenerationRequest
    key: str  # the segment's object


@dataclass(frozen=True)
class SceneResult:
    segment: AudioSegment
    cache_key: str
    continuation_state: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment.model_dump(mode="json"),
            "cache_key": self.cache_key,
            "continuation_state": self.continuation_state,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SceneResult:
        return cls(
            AudioSegment.model_validate(doc["segment"]),
            str(doc["cache_key"]),
            doc.get("continuation_state"),
        )


class SceneFailed(PermanentError):
    """A scene failed and the job's strategy is ``halt``."""

    public = True

    def __init__(self, index: int, cause: BaseException, code: str) -> None:
        super().__init__(f"scene {index}: {public_text(cause, code)}", code=code)


@dataclass
class _Job:
    event: AudioJobSubmitted
    ctx: StageContext
    plans: list[ScenePlan]
    done: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def record(self, fields: Mapping[str, Any]) -> None:
        """One write to the stage record at a time: concurrent scenes must not interleave
        partial updates of one document (some servers do not serialize them)."""
        async with self.write_lock:
            await self.ctx.record(fields)


class AudioHandler:
    def __init__(
        self,
        *,
        providers: Mapping[str, Provider],
        media: MediaPort,
        ffmpeg: FFmpegPort,
        cache: GenerationCache,
        config: AudioConfig,
    ) -> None:
        self._providers = providers
        self._media = media
        self._ffmpeg = ffmpeg
        self._cache = cache
        self._config = config

    async def __call__(self, event: Event, ctx: StageContext) -> Sequence[Event]:
        if not isinstance(event, AudioJobSubmitted):
            raise TypeError(f"the audio agent cannot handle {event.event_type}")
        # Every scene is checked before any provider is called: bad input costs nothing.
        job = _Job(event, ctx, self._plan(event))
        total = len(job.plans)
        await ctx.record({"attempt_of_job": event.attempt, "kind": event.kind,
                          "scenes_total": total})  # fmt: skip
        await ctx.progress(0, total, "starting")
        if event.kind == "music" and event.params.continuation:
            # In order, each scene continuing the one before, so the soundtrack flows.
            results: list[SceneResult] = []
            previous: SceneResult | None = None
            for plan in job.plans:
                previous = await self._scene(job, plan, previous)
                results.append(previous)
        else:
            bound = asyncio.Semaphore(self._config.scene_concurrency)

            async def one(plan: ScenePlan) -> SceneResult:
                async with bound:
                    return await self._scene(job, plan, None)

            results = list(await asyncio.gather(*(one(p) for p in job.plans)))
        segments = sorted((r.segment for r in results), key=lambda s: s.scene_index)
        return [
            AudioRendered(
                job_id=event.job_id,
                tenant_id=event.tenant_id,
                correlation_id=event.correlation_id,
                producer=Producer.AUDIO_AGENT,
                segments=segments,
                attempt=event.attempt,
            )
        ]

    # -- planning -----------------------------------------------------------------------------

    def _plan(self, event: AudioJobSubmitted) -> list[ScenePlan]:
        scenes = sorted(event.scenes, key=lambda s: s.index)
        route = self._config.tiers.route(event.tier, event.kind, event.provider, event.model)
        provider = self._providers.get(route.provider)
        if provider is None:
            raise InvalidGeneration(
                f"audio provider {route.provider!r} is not configured", provider=route.provider
            )
        plans = []
        for n, scene in enumerate(scenes):
            request = GenerationRequest(
                kind=event.kind,
                model=route.model,
                prompt=enhance(event.kind, scene.prompt, event.params.enhance_prompt),
                duration_s=scene.seconds,
                sample_rate=event.params.sample_rate,
                format=event.params.format,
                seed=event.seed,
                text=scene.text,
                previous_text=scenes[n - 1].text if n > 0 else None,
                next_text=scenes[n + 1].text if n + 1 < len(scenes) else None,
            )
            provider.check(request)
            name = f"a{event.attempt}-scene-{scene.index:03d}.{event.params.format}"
            plans.append(ScenePlan(scene, route, provider, request, audio_key(event.job_id, name)))
        return plans

    # -- one scene ----------------------------------------------------------------------------

    async def _scene(self, job: _Job, plan: ScenePlan, previous: SceneResult | None) -> SceneResult:
        ctx, index = job.ctx, plan.scene.index
        saved = await ctx.checkpoint(f"scene-{index}")
        if saved is not None:
            result = SceneResult.from_json(saved)
        else:
            try:
                result = await self._generate(job, plan, previous)
            except (ProviderError, ProviderRejected) as exc:
                code = exc.code
                log.warning("audio %s scene %d failed: %s", job.event.job_id, index,
                            operator_detail(exc))  # fmt: skip
                if job.event.params.error_strategy == "halt":
                    raise SceneFailed(index, exc, code) from exc
                result = await self._silent(job, plan, exc, code)
            await ctx.save(f"scene-{index}", result.to_json())
        seg = result.segment
        done_fields = {
            "status": "silent_fallback" if seg.silent_fallback else "done",
            "s3_key": seg.s3_key,
            "provider": seg.provider,
            "model": seg.model,
            "request_id": seg.request_id,
            "cached": seg.cached,
            "error": seg.error.model_dump() if seg.error else None,
        }
        async with job.lock:
            job.done += 1
            await job.record({f"scenes.{index}": done_fields})
            async with job.write_lock:
                await ctx.progress(job.done, len(job.plans), f"scene {index}")
        return result

    async def _generate(
        self, job: _Job, plan: ScenePlan, previous: SceneResult | None
    ) -> SceneResult:
        event, ctx, index = job.event, job.ctx, plan.scene.index
        request = plan.request
        if previous is not None:
            request = replace(
                request,
                continuation_state=previous.continuation_state,
                continuation_url=await self._media.presign_get(
                    previous.segment.s3_key, CONTINUATION_URL_EXPIRY_S
                ),
            )
        key = cache_key(
            provider=plan.route.provider, model=plan.route.model, kind=request.kind,
            prompt=request.prompt, text=request.text, duration_s=round(request.duration_s, 3),
            sample_rate=request.sample_rate, format=request.format, seed=request.seed,
            continues=previous.cache_key if previous is not None else None,
        )  # fmt: skip
        use_cache = event.cache and self._config.cache_enabled
        if use_cache:
            hit = await self._from_cache(key, plan)
            if hit is not None:
                return hit
        ticket_doc = await ctx.checkpoint(f"scene-{index}-request")
        if ticket_doc is None:
            await ctx.check_cancelled()  # the paid step: not for a cancelled job
            ticket = await plan.provider.submit(request)
            # Saved before waiting: a crash from here on resumes this request, unpaid twice.
            await ctx.save(f"scene-{index}-request", ticket.to_json())
            submitted = {"status": "submitted", "provider": ticket.provider,
                         "request_id": ticket.request_id}  # fmt: skip
            await job.record({f"scenes.{index}": submitted})
        else:
            ticket = Ticket.from_json(ticket_doc)

        async def on_status(status: str, position: int | None) -> None:
            await job.record({f"scenes.{index}.status": status,
                              f"scenes.{index}.queue_position": position})  # fmt: skip

        deadline = min(self._config.scene_deadline_s, max(ctx.remaining_s(), 1.0))
        async with self._ffmpeg.temp_workdir(prefix=WORKDIR_PREFIX) as tmp:
            generated = await plan.provider.fetch(
                ticket, tmp / "provider-output", deadline_s=deadline, on_status=on_status
            )
            out = tmp / f"segment.{request.format}"
            await render.fit(
                self._ffmpeg, generated.path, out, request.duration_s, request.sample_rate,
                request.format,
            )  # fmt: skip
            await self._media.upload_file(plan.key, out, content_type_for(plan.key))
        if use_cache:
            stored = cache_object_key(key, request.format)
            await self._media.copy(plan.key, stored)
            entry = CacheEntry(stored, request.duration_s, ticket.request_id,
                               generated.continuation_state)  # fmt: skip
            await self._cache.put(key, entry)
        return SceneResult(
            self._segment(plan, cached=False, request_id=ticket.request_id),
            key,
            generated.continuation_state,
        )

    async def _from_cache(self, key: str, plan: ScenePlan) -> SceneResult | None:
        entry = await self._cache.get(key)
        if entry is None or await self._media.head(entry.s3_key) is None:
            metrics.cache("generation", False)
            return None
        metrics.cache("generation", True)
        await self._media.copy(entry.s3_key, plan.key)
        return SceneResult(
            self._segment(plan, cached=True, request_id=entry.request_id),
            key,
            entry.continuation_state,
        )

    async def _silent(
        self, job: _Job, plan: ScenePlan, exc: BaseException, code: str
    ) -> SceneResult:
        request = plan.request
        async with self._ffmpeg.temp_workdir(prefix=WORKDIR_PREFIX) as tmp:
            out = tmp / f"silence.{request.format}"
            await render.silence(
                self._ffmpeg, out, request.duration_s, request.sample_rate, request.format
            )
            await self._media.upload_file(plan.key, out, content_type_for(plan.key))
        error = ErrorInfo(code=code, message=public_text(exc, code), retryable=False, attempts=1)
        segment = self._segment(plan, cached=False, request_id=None, error=error)
        # Silence continues nothing: the next scene starts afresh.
        return SceneResult(segment, f"silence:{job.event.event_id}:{plan.scene.index}", None)

    def _segment(
        self, plan: ScenePlan, *, cached: bool, request_id: str | None,
        error: ErrorInfo | None = None,
    ) -> AudioSegment:  # fmt: skip
        return AudioSegment(
            scene_index=plan.scene.index,
            s3_key=plan.key,
            duration_s=plan.request.duration_s,
            provider=plan.route.provider,  # type: ignore[arg-type]
            model=plan.route.model,
            cached=cached,
            silent_fallback=error is not None,
            prompt=plan.scene.prompt,
            sent_prompt=plan.request.prompt,
            request_id=request_id,
            error=error,
        )


def audio_record(event: Event) -> str:
    """Each regeneration keeps its own stage record: ``audio``, then ``audio.a2``..."""
    attempt = getattr(event, "attempt", 1)
    return Stage.AUDIO if attempt == 1 else f"{Stage.AUDIO}.a{attempt}"


def audio_failed(event: Event, error: ErrorInfo) -> Event:
    """The failure answer for an audio job the stage gave up on."""
    assert isinstance(event, AudioJobSubmitted)
    return AudioFailed(
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        correlation_id=event.correlation_id,
        producer=Producer.AUDIO_AGENT,
        error=error,
        attempt=event.attempt,
    )
