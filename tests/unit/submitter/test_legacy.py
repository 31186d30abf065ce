"""The old contracts over jobs (``services.submitter.legacy``), on in-memory ports: the
video merger's request as a concat merge, the MusicGen workflow as an audio job whose
scenes are joined by a fade merge."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import ErrorInfo, Event
from schemas.audio import AudioFailed, AudioJobSubmitted, AudioRendered, AudioSegment
from schemas.merge import MergeCompleted, MergeFailed, MergeRequested
from schemas.names import Producer, Stage
from services.common.job_store import JobStatusRecorder, StageStatus
from services.merger.formats import VIDEO_OUTPUTS
from services.submitter.jobs.control import JobFinished, JobNotFound
from services.submitter.legacy import (
    LEGACY_FIELD,
    MERGE_OUTPUT_EXTS,
    SOUNDTRACK_SUFFIX,
    ForeignKey,
    GenerateScenesRequest,
    InputMissing,
    LegacyAudioPorts,
    MergeDone,
    MergePending,
    MergePorts,
    MergeRequestFailed,
    NoScenes,
    NotReady,
    audio_spec,
    concat_spec,
    generate_scenes,
    legacy_audio,
    legacy_download,
    merge_status,
    merge_videos,
    old_scenes,
    tenant_key,
)
from services.submitter.requests import RequestPorts, SubmitFailed
from services.submitter.waiter import Background, ResultWaiter
from tests.support.fakes import MemoryEmitter, MemoryJobs, MemoryMedia
from tests.support.submitter import AnsweringEmitter, Responder

BUCKET = "tapedeck"


# -- the video merger -----------------------------------------------------------------------


def test_the_outputs_are_the_mergers() -> None:
    assert set(MERGE_OUTPUT_EXTS) == set(VIDEO_OUTPUTS)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("ingest/acme/a.mp4", "ingest/acme/a.mp4"),
        ("media/acme/x/y.mov", "media/acme/x/y.mov"),
        ("s3://tapedeck/env/ingest/acme/a.mp4", "ingest/acme/a.mp4"),
    ],
)
def test_keys_and_old_uris_under_the_tenants_prefixes(value: str, key: str) -> None:
    assert tenant_key(value, "k", "acme", bucket=BUCKET, key_prefix="env/") == key


@pytest.mark.parametrize(
    "value",
    [
        "ingest/acme2/a.mp4",
        "ingest/other/a.mp4",
        "ingest/acme",
        "ingest/acme/",
        "ingest/acme/../other/a.mp4",
        "ingest//acme/a.mp4",
        "episodes/acme/ep/source.mp3",
        "media/other/a.mp4",
        "s3://elsewhere/env/ingest/acme/a.mp4",
        "s3://tapedeck/ingest/acme/a.mp4",  # outside this service's key prefix
        "s3://tapedeck/env/ingest/other/a.mp4",
    ],
)
def test_anything_else_is_foreign(value: str) -> None:
    with pytest.raises(ForeignKey) as err:
        tenant_key(value, "input_videos[0]", "acme", bucket=BUCKET, key_prefix="env/")
    assert err.value.code == "forbidden_s3_key"
    assert err.value.message.startswith("input_videos[0]")


def test_the_old_request_is_a_concat_merge() -> None:
    spec = concat_spec(
        "acme",
        ["s3://tapedeck/ingest/acme/a.mp4", "media/acme/b.mp4"],
        "ingest/acme/out.mp4",
        bucket=BUCKET,
    )
    assert (spec.job_kind, spec.operation) == ("merge", "concat_video")
    assert spec.inputs == ["ingest/acme/a.mp4", "media/acme/b.mp4"]
    assert spec.output_key == "ingest/acme/out.mp4"
    with pytest.raises(ForeignKey, match="output_key"):
        concat_spec("acme", ["ingest/acme/a.mp4"], "renders/out.mp4", bucket=BUCKET)


class MergeWorld:
    def __init__(self, respond: Responder | None = None, wait_s: float = 1.0) -> None:
        self.jobs, self.media = MemoryJobs(), MemoryMedia()
        self.media.put("ingest/acme/a.mp4", b"a")
        self.media.put("media/acme/b.mp4", b"b")
        self.waiter, self.background = ResultWaiter(), Background()
        self.emitter = AnsweringEmitter(self.waiter, respond)
        self.admitted: list[str] = []

        async def admit(tenant_id: str) -> None:
            self.admitted.append(tenant_id)

        requests = RequestPorts(self.jobs, self.emitter, self.waiter, self.background)
        self.ports = MergePorts(
            requests=requests,
            media=self.media,
            bucket=BUCKET,
            key_prefix="",
            wait_timeout_s=wait_s,
            url_expiry_s=60,
            admit=admit,
        )

    async def merge(self, *inputs: str) -> MergeDone | MergePending:
        inputs = inputs or ("ingest/acme/a.mp4", "media/acme/b.mp4")
        return await merge_videos(self.ports, "acme", list(inputs), "media/acme/out.mp4")


def merge_completed(event: Event) -> MergeCompleted:
    assert isinstance(event, MergeRequested)
    return MergeCompleted(
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        producer=Producer.MERGER,
        s3_key=event.output_key,
        duration_ms=2500,
        size_bytes=999,
        operation=event.operation,
        copied=True,
    )


def merge_failed(event: Event) -> MergeFailed:
    assert isinstance(event, MergeRequested)
    error = ErrorInfo(
        code="input_no_video", message="input 2 has no video", retryable=False, attempts=1
    )
    return MergeFailed(
        job_id=event.job_id, tenant_id=event.tenant_id, producer=Producer.MERGER, error=error
    )


async def test_a_merge_answered_in_time_is_done() -> None:
    world = MergeWorld(merge_completed)
    done = await world.merge()
    assert isinstance(done, MergeDone)
    assert (done.s3_key, done.duration_ms, done.size_bytes, done.copied) == (
        "media/acme/out.mp4",
        2500,
        999,
        True,
    )
    [event] = world.emitter.events
    assert isinstance(event, MergeRequested) and event.job_id == done.job_id
    assert (event.tenant_id, event.producer, event.operation) == (
        "acme",
        "submitter",
        "concat_video",
    )
    job = world.jobs.jobs[done.job_id]
    assert job["kind"] == "merge" and job["spec"]["inputs"] == list(event.inputs)
    assert world.admitted == ["acme"] and len(world.waiter) == 0


async def test_a_failed_merge_and_one_not_answered_in_time() -> None:
    world = MergeWorld(merge_failed)
    with pytest.raises(MergeRequestFailed) as err:
        await world.merge()
    assert err.value.error.code == "input_no_video" and err.value.job_id.startswith("job-")

    pending = await MergeWorld(None, wait_s=0.01).merge()
    assert isinstance(pending, MergePending) and pending.job_id.startswith("job-")


async def test_a_missing_input_costs_no_job() -> None:
    world = MergeWorld(merge_completed)
    with pytest.raises(InputMissing) as err:
        await world.merge("ingest/acme/a.mp4", "ingest/acme/gone.mp4")
    assert err.value.code == "input_missing" and "input_videos[1]" in err.value.message
    assert world.jobs.jobs == {} and world.emitter.events == [] and world.admitted == []


async def test_merge_status_reads_the_stage_record() -> None:
    world = MergeWorld(None, wait_s=0.01)
    pending = await world.merge()
    assert isinstance(pending, MergePending)
    status = await merge_status(world.jobs, "acme", pending.job_id)
    assert (status.status, status.progress, status.done) == ("PENDING", 0, None)

    [event] = world.emitter.events
    recorder = JobStatusRecorder(world.jobs)
    await recorder.started(Stage.MERGE, event)
    await world.jobs.record_progress(pending.job_id, Stage.MERGE, {"progress": {"percent": 40}})
    running = await merge_status(world.jobs, "acme", pending.job_id)
    assert (running.status, running.progress) == ("RUNNING", 40)

    await recorder.finished(Stage.MERGE, event, [merge_completed(event)], False)
    done = await merge_status(world.jobs, "acme", pending.job_id)
    assert done.status == "COMPLETED" and done.done is not None
    assert (done.done.s3_key, done.done.size_bytes) == ("media/acme/out.mp4", 999)

    for tenant, job_id in (("other", pending.job_id), ("acme", "job-nope")):
        with pytest.raises(JobNotFound):
            await merge_status(world.jobs, tenant, job_id)


async def test_merge_status_of_a_failure_and_of_other_kinds() -> None:
    world = MergeWorld(merge_failed)
    with pytest.raises(MergeRequestFailed) as err:
        await world.merge()
    [event] = world.emitter.events
    await JobStatusRecorder(world.jobs).finished(Stage.MERGE, event, [merge_failed(event)], True)
    failed = await merge_status(world.jobs, "acme", err.value.job_id)
    assert failed.status == "FAILED" and failed.error is not None
    assert failed.error.code == "input_no_video"

    await world.jobs.create_job("job-audio", "acme", "audio", {})
    with pytest.raises(JobNotFound):
        await merge_status(world.jobs, "acme", "job-audio")


# -- the MusicGen workflow ------------------------------------------------------------------


def request(**fields: Any) -> GenerateScenesRequest:
    return GenerateScenesRequest.model_validate({"job_id": "123", **fields})


SCENES = [{"prompt": "calm piano", "duration_s": 2}, {"prompt": "rain", "duration_s": 3.5}]


def test_the_old_request_is_a_music_job() -> None:
    spec = audio_spec(
        request(tier="premium", audio_params={"error_strategy": "halt"}),
        [("calm piano", 2.0), ("rain", 3.5)],
    )
    assert (spec.job_kind, spec.kind, spec.tier, spec.provider) == (
        "audio",
        "music",
        "premium",
        None,
    )
    assert [(s.index, s.prompt, s.seconds) for s in spec.scenes] == [
        (0, "calm piano", 2.0),
        (1, "rain", 3.5),
    ]
    assert (spec.params.format, spec.params.continuation, spec.params.error_strategy) == (
        "mp3",
        True,
        "halt",
    )
    # The old prompt parameter is every scene's prompt.
    override = audio_spec(
        request(audio_params={"prompt": "Epic orchestral music"}),
        [("calm piano", 2.0), ("rain", 3.5)],
    )
    assert {s.prompt for s in override.scenes} == {"Epic orchestral music"}


def test_the_old_defaults() -> None:
    params = request().audio_params
    assert (params.fade_duration, params.sync_mode, params.merge_with_video) == (1.0, "trim", True)
    assert (params.error_strategy, params.prompt) == ("continue_with_silence", None)
    assert request().tier == "basic" and request().scenes is None


def test_scenes_of_a_stored_job() -> None:
    production = {"kind": "production"}
    spec: dict[str, Any] = {
        "prompt": "a city",
        "scenes": [{"prompt": "streets", "duration_s": 3}, {"prompt": "roofs", "duration_s": 4}],
        "audio_params": {"prompt": None},
    }
    assert old_scenes(spec, production) == [("streets", 3.0), ("roofs", 4.0)]
    spec["audio_params"]["prompt"] = "night jazz"
    assert old_scenes(spec, production) == [("night jazz", 3.0), ("night jazz", 4.0)]
    # One video for the whole job: its length, in pieces the audio agent takes.
    whole = {"prompt": "a city", "duration_seconds": 1500}
    assert old_scenes(whole, production) == [("a city", 500.0)] * 3
    upstream = {"prompt": "a city", "video": {"source": "upstream"}}
    assert old_scenes(upstream, {**production, "video": {"duration_s": 12.5}}) == [("a city", 12.5)]
    assert old_scenes({"prompt": "a city", "video": "ingest/acme/v.mp4"}, production) == []
    audio = {
        "scenes": [
            {"index": 1, "prompt": "b", "duration_s": 2},
            {"index": 0, "prompt": "a", "video_duration_s": 1},
        ]
    }
    assert old_scenes(audio, {"kind": "audio"}) == [("a", 1.0), ("b", 2.0)]
    assert old_scenes({"inputs": []}, {"kind": "merge"}) == []


class FakeAliases:
    """The alias index over the fake job store's documents."""

    def __init__(self, jobs: MemoryJobs) -> None:
        self._jobs = jobs

    async def latest(self, tenant_id: str, legacy_job_id: str) -> str | None:
        found = [
            d
            for d in self._jobs.jobs.values()
            if d.get("tenant_id") == tenant_id
            and (d.get(LEGACY_FIELD) or {}).get("job_id") == legacy_job_id
        ]
        found.sort(key=lambda d: (d["created_at"], d["_id"]))
        return str(found[-1]["_id"]) if found else None


class AudioWorld:
    def __init__(self) -> None:
        self.jobs, self.media, self.emitter = MemoryJobs(), MemoryMedia(), MemoryEmitter()
        self.ports = LegacyAudioPorts(
            jobs=self.jobs,
            aliases=FakeAliases(self.jobs),
            media=self.media,
            emitter=self.emitter,
            url_expiry_s=60,
        )
        self.recorder = JobStatusRecorder(self.jobs)

    async def generate(self, **fields: Any) -> AudioJobSubmitted:
        started = await generate_scenes(self.ports, "acme", request(**fields))
        event = self.emitter.events[-1]
        assert isinstance(event, AudioJobSubmitted) and event.job_id == started.audio_job_id
        assert started.scenes == len(event.scenes)
        return event

    async def render(self, event: AudioJobSubmitted, silent: tuple[int, ...] = ()) -> list[str]:
        segments = [
            AudioSegment(
                scene_index=s.index,
                s3_key=f"audio/{event.job_id}/{s.index}.mp3",
                duration_s=s.seconds,
                provider="local",
                cached=False,
                silent_fallback=s.index in silent,
            )
            for s in event.scenes
        ]
        done = AudioRendered(
            job_id=event.job_id, tenant_id="acme", producer=Producer.AUDIO_AGENT, segments=segments
        )
        await self.recorder.finished(Stage.AUDIO, event, [done], False)
        return [s.s3_key for s in segments]


async def test_generate_scenes_records_the_old_request() -> None:
    world = AudioWorld()
    event = await world.generate(scenes=SCENES, audio_params={"fade_duration": 2.5})
    job = world.jobs.jobs[event.job_id]
    assert (job["kind"], job["tenant_id"], job["spec"]["kind"]) == ("audio", "acme", "music")
    assert job[LEGACY_FIELD]["job_id"] == "123" and job[LEGACY_FIELD]["scenes_from"] == "request"
    assert job[LEGACY_FIELD]["audio_params"]["fade_duration"] == 2.5
    assert world.jobs.stages[f"{event.job_id}:audio"]["status"] == "PENDING"


async def test_without_scenes_the_tenants_job_gives_them() -> None:
    world = AudioWorld()
    spec = {"prompt": "a city", "scenes": [{"prompt": "streets", "duration_s": 3}]}
    await world.jobs.create_job("job-prod", "acme", "production", {"spec": spec})
    event = await world.generate(job_id="job-prod")
    assert [(s.prompt, s.seconds) for s in event.scenes] == [("streets", 3.0)]
    assert world.jobs.jobs[event.job_id][LEGACY_FIELD]["scenes_from"] == "job"

    with pytest.raises(JobNotFound):
        await generate_scenes(world.ports, "other", request(job_id="job-prod"))
    with pytest.raises(JobNotFound):
        await generate_scenes(world.ports, "acme", request(job_id="job-nope"))
    await world.jobs.create_job(
        "job-single", "acme", "production", {"spec": {"prompt": "x", "video": "ingest/acme/v.mp4"}}
    )
    with pytest.raises(NoScenes) as err:
        await generate_scenes(world.ports, "acme", request(job_id="job-single"))
    assert err.value.code == "no_scenes"


async def test_a_job_that_cannot_be_queued_fails_at_once() -> None:
    world = AudioWorld()
    world.emitter.fail_emits = 1
    with pytest.raises(SubmitFailed) as err:
        await generate_scenes(world.ports, "acme", request(scenes=SCENES))
    status = await legacy_audio(world.ports, "acme", err.value.job_id)
    assert (status.status, status.audio_status) == ("failed", "FAILED")
    assert status.error is not None and status.error.code == "submit_failed"


async def test_the_old_status_from_pending_to_completed() -> None:
    world = AudioWorld()
    event = await world.generate(scenes=SCENES, audio_params={"fade_duration": 2.0})
    for job_id in ("123", event.job_id):
        status = await legacy_audio(world.ports, "acme", job_id)
        assert (status.job_id, status.audio_job_id) == ("123", event.job_id)
        assert (status.status, status.progress, status.audio_status) == ("pending", 0, "PENDING")
    with pytest.raises(NotReady):
        await legacy_download(world.ports, "acme", "123")

    await world.recorder.started(Stage.AUDIO, event)
    await world.jobs.record_progress(event.job_id, Stage.AUDIO, {"progress": {"percent": 50}})
    running = await legacy_audio(world.ports, "acme", "123")
    assert (running.status, running.progress, running.audio_status) == ("processing", 45, "RUNNING")

    keys = await world.render(event, silent=(1,))
    for _ in range(3):
        joining = await legacy_audio(world.ports, "acme", "123")
        assert (joining.status, joining.progress, joining.audio_key) == ("processing", 90, None)
        assert joining.silent_scenes == [1]
    # The join was asked for once, however often the status was read.
    [merge] = world.emitter.events[1:]
    assert isinstance(merge, MergeRequested)
    assert merge.job_id == event.job_id + SOUNDTRACK_SUFFIX
    assert (merge.operation, merge.inputs, merge.output_key) == (
        "crossfade_audio",
        keys,
        f"audio/{event.job_id}/soundtrack.mp3",
    )
    assert (merge.params.fade_mode, merge.params.fade_duration_s) == ("fade", 2.0)
    assert merge.correlation_id == event.correlation_id and merge.tenant_id == "acme"
    assert world.jobs.jobs[merge.job_id]["kind"] == "merge"

    await world.recorder.started(Stage.MERGE, merge)
    await world.jobs.record_progress(merge.job_id, Stage.MERGE, {"progress": {"percent": 50}})
    assert (await legacy_audio(world.ports, "acme", "123")).progress == 95
    done = MergeCompleted(
        job_id=merge.job_id,
        tenant_id="acme",
        producer=Producer.MERGER,
        s3_key=merge.output_key,
        duration_ms=5500,
        size_bytes=10,
    )
    await world.recorder.finished(Stage.MERGE, merge, [done], False)
    completed = await legacy_audio(world.ports, "acme", "123")
    assert (completed.status, completed.progress, completed.audio_status) == (
        "completed",
        100,
        "COMPLETED",
    )
    assert completed.audio_key == merge.output_key
    url = await legacy_download(world.ports, "acme", "123")
    assert url.startswith(f"https://s3.test/{merge.output_key}")


async def test_one_scene_needs_no_join_and_the_newest_job_answers() -> None:
    world = AudioWorld()
    first = await world.generate(scenes=SCENES[:1])
    second = await world.generate(scenes=SCENES[:1])
    assert (await legacy_audio(world.ports, "acme", "123")).audio_job_id == second.job_id
    [key] = await world.render(second)
    status = await legacy_audio(world.ports, "acme", "123")
    assert (status.status, status.audio_key) == ("completed", key)
    assert len(world.emitter.events) == 2  # no merge
    assert (await legacy_audio(world.ports, "acme", first.job_id)).status == "pending"
    with pytest.raises(JobNotFound):
        await legacy_audio(world.ports, "other", "123")
    with pytest.raises(JobNotFound):
        await legacy_audio(world.ports, "acme", "124")


async def test_failures_end_the_old_status() -> None:
    world = AudioWorld()
    event = await world.generate(scenes=SCENES)
    error = ErrorInfo(code="provider_failed", message="scene 1 failed", retryable=False, attempts=3)
    failed = AudioFailed(
        job_id=event.job_id, tenant_id="acme", producer=Producer.AUDIO_AGENT, error=error
    )
    await world.recorder.finished(Stage.AUDIO, event, [failed], True)
    status = await legacy_audio(world.ports, "acme", "123")
    assert (status.status, status.audio_status, status.error) == ("failed", "FAILED", error)
    with pytest.raises(JobFinished):
        await legacy_download(world.ports, "acme", "123")

    # A join that fails fails the status.
    joined = await world.generate(job_id="456", scenes=SCENES)
    await world.render(joined)
    await legacy_audio(world.ports, "acme", "456")
    merge = world.emitter.events[-1]
    assert isinstance(merge, MergeRequested)
    merge_error = ErrorInfo(
        code="input_not_media", message="input 2 is not media", retryable=False, attempts=1
    )
    refused = MergeFailed(
        job_id=merge.job_id, tenant_id="acme", producer=Producer.MERGER, error=merge_error
    )
    await world.recorder.finished(Stage.MERGE, merge, [refused], True)
    status = await legacy_audio(world.ports, "acme", "456")
    assert (status.status, status.error) == ("failed", merge_error)

    # A join that cannot be queued too.
    queued = await world.generate(job_id="789", scenes=SCENES)
    await world.render(queued)
    world.emitter.fail_emits = 1
    status = await legacy_audio(world.ports, "acme", "789")
    assert status.status == "failed" and status.error is not None
    assert status.error.code == "submit_failed"
    assert world.jobs.stages[f"{queued.job_id}{SOUNDTRACK_SUFFIX}:merge"]["status"] == (
        StageStatus.FAILED
    )


async def test_a_cancelled_job_is_failed_in_the_old_status() -> None:
    world = AudioWorld()
    event = await world.generate(scenes=SCENES)
    world.jobs.jobs[event.job_id]["status"] = "CANCELLED"
    status = await legacy_audio(world.ports, "acme", "123")
    assert status.status == "failed" and status.error is not None
    assert status.error.code == "cancelled"
