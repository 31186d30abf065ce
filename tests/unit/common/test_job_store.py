"""Forward-only stage transitions, the job store's documents (on an in-memory MongoDB) and
the status record every stage keeps there."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.job_store import (
    JOBS,
    RANK,
    STAGES,
    TERMINAL,
    JobStatusRecorder,
    JobStore,
    StageStatus,
    can_move,
    predecessors,
)
from services.common.mongo import Doc
from services.common.ports import JobRepo
from tests.support.events import clip_ready, clip_request
from tests.support.fakes import MemoryJobs, MemoryMongo

statuses = st.sampled_from(list(StageStatus))


@given(st.lists(statuses, min_size=1, max_size=30))
def test_any_event_sequence_only_moves_forward(seq: list[StageStatus]) -> None:
    current: StageStatus | None = None
    for target in seq:
        if can_move(current, target):
            assert current is None or RANK[target] > RANK[current]
            current = target
    # Once terminal, nothing else moves it.
    if current in TERMINAL:
        assert not any(can_move(current, s) for s in StageStatus)


@given(statuses)
def test_predecessors_are_exactly_the_lower_ranks(target: StageStatus) -> None:
    assert set(predecessors(target)) == {s.value for s in StageStatus if can_move(s, target)}


# --- JobStore on an in-memory MongoDB: documents, timestamps and races --------------------

JOB = "job-1"


def mongo_store() -> tuple[JobStore, MemoryMongo]:
    # The conditional writes (the by-_id ones run on the real server, tests/integration).
    db = MemoryMongo()
    return JobStore(cast("AsyncDatabase[Doc]", db), by_id=False), db


async def stage_doc(store: JobStore, stage: str = "clip", job_id: str = JOB) -> Doc:
    doc = await store.stage(job_id, stage)
    assert doc is not None
    return doc


def assert_recent_utc(moment: object) -> None:
    assert isinstance(moment, datetime) and moment.tzinfo is UTC
    assert timedelta(0) <= datetime.now(UTC) - moment < timedelta(seconds=30)


async def test_indexes_serve_tenant_listings_stage_lookups_and_sweeps() -> None:
    store, db = mongo_store()
    await store.ensure_indexes()
    assert db[JOBS].indexes == [([("tenant_id", 1), ("created_at", 1)], False)]
    assert sorted(db[STAGES].indexes) == [
        ([("job_id", 1), ("stage", 1)], True),
        ([("status", 1), ("updated_at", 1)], False),
    ]


async def test_a_job_has_one_document_per_stage() -> None:
    store, db = mongo_store()
    await store.ensure_indexes()
    await store.transition(JOB, "clip", StageStatus.PENDING)
    await store.transition(JOB, "merge", StageStatus.PENDING)
    with pytest.raises(DuplicateKeyError):
        # Same (job_id, stage) under another _id: only the compound index can refuse it.
        await db[STAGES].insert_one({"_id": "other", "job_id": JOB, "stage": "clip"})


async def test_a_job_is_created_once_and_read_back_with_its_stages() -> None:
    store, _ = mongo_store()
    assert await store.job(JOB) is None
    assert await store.create_job(JOB, "acme", "audio", {"spec": {"n": 1}})
    # A resubmission changes nothing.
    assert not await store.create_job(JOB, "other", "video", {"spec": {"n": 2}})
    await store.transition(JOB, "audio", StageStatus.RUNNING)
    await store.transition("job-10", "audio", StageStatus.RUNNING)
    job = await store.job(JOB)
    assert job is not None
    assert_recent_utc(job.pop("created_at"))
    assert job.pop("stages").keys() == {"audio"}
    assert job == {"_id": JOB, "job_id": JOB, "tenant_id": "acme", "kind": "audio",
                   "spec": {"n": 1}}  # fmt: skip


async def test_stages_without_a_job_document_still_read_as_a_job() -> None:
    store, _ = mongo_store()
    await store.transition(JOB, "clip", StageStatus.RUNNING)
    job = await store.job(JOB)
    assert job is not None
    assert job["_id"] == job["job_id"] == JOB
    assert job["stages"]["clip"]["status"] == "RUNNING"
    assert await store.job("job-2") is None


async def test_the_first_transition_creates_the_stage_document() -> None:
    store, _ = mongo_store()
    assert await store.transition(JOB, "clip", StageStatus.RUNNING, {"tenant_id": "acme"})
    doc = await stage_doc(store)
    created, updated = doc.pop("created_at"), doc.pop("updated_at")
    assert_recent_utc(created)
    assert updated == created
    assert doc == {"_id": f"{JOB}:clip", "job_id": JOB, "stage": "clip", "status": "RUNNING",
                   "tenant_id": "acme"}  # fmt: skip
    assert await store.stage(JOB, "merge") is None
    assert await store.stage("job-2", "clip") is None


@pytest.mark.parametrize("first", [None, StageStatus.PENDING])
async def test_a_forward_move_updates_status_fields_and_time(first: StageStatus | None) -> None:
    store, _ = mongo_store()
    if first is not None:
        assert await store.transition(JOB, "clip", first)
    assert await store.transition(JOB, "clip", StageStatus.RUNNING, {"tenant_id": "acme"})
    before = await stage_doc(store)
    await asyncio.sleep(0.002)
    assert await store.transition(JOB, "clip", StageStatus.COMPLETED, {"outputs": [1]})
    doc = await stage_doc(store)
    assert doc["status"] == "COMPLETED" and doc["outputs"] == [1] and doc["tenant_id"] == "acme"
    assert doc["created_at"] == before["created_at"] < doc["updated_at"]
    assert_recent_utc(doc["updated_at"])


@pytest.mark.parametrize(
    ("reached", "late"),
    [
        (StageStatus.RUNNING, StageStatus.RUNNING),
        (StageStatus.RUNNING, StageStatus.PENDING),
        (StageStatus.COMPLETED, StageStatus.RUNNING),
        (StageStatus.COMPLETED, StageStatus.FAILED),
        (StageStatus.FAILED, StageStatus.COMPLETED),
        (StageStatus.CANCELLED, StageStatus.PENDING),
    ],
)
async def test_a_late_or_duplicate_event_changes_nothing(
    reached: StageStatus, late: StageStatus
) -> None:
    store, _ = mongo_store()
    assert await store.transition(JOB, "clip", reached, {"outputs": ["first"]})
    before = await stage_doc(store)
    assert not await store.transition(JOB, "clip", late, {"outputs": ["late"]})
    assert await stage_doc(store) == before


@pytest.mark.parametrize("order", ["running first", "completed first"])
async def test_racing_first_writers_never_lose_the_final_status(order: str) -> None:
    store, _ = mongo_store()
    running = store.transition(JOB, "clip", StageStatus.RUNNING, {"by": "running"})
    completed = store.transition(JOB, "clip", StageStatus.COMPLETED, {"outputs": [1]})
    if order == "running first":
        moved_running, moved_completed = await asyncio.gather(running, completed)
        assert moved_running
    else:
        moved_completed, moved_running = await asyncio.gather(completed, running)
        assert not moved_running
    # Both missed the conditional update and raced to insert: the loser's retry must
    # still move the stage forward, so COMPLETED is never lost to a late RUNNING.
    assert moved_completed
    doc = await stage_doc(store)
    assert doc["status"] == "COMPLETED" and doc["outputs"] == [1]


async def test_two_identical_first_writers_move_the_stage_once() -> None:
    store, _ = mongo_store()
    moved = await asyncio.gather(*(store.transition(JOB, "clip", StageStatus.RUNNING)
                                   for _ in range(2)))  # fmt: skip
    assert sorted(moved) == [False, True]


async def test_progress_lands_on_an_open_stage_only() -> None:
    store, _ = mongo_store()
    # No stage yet: nothing to report on, and nothing is created.
    assert not await store.record_progress(JOB, "clip", {"progress": {"done": 1}})
    assert await store.stage(JOB, "clip") is None
    await store.transition(JOB, "clip", StageStatus.PENDING)
    assert await store.record_progress(JOB, "clip", {"progress.0": "queued"})
    await store.transition(JOB, "clip", StageStatus.RUNNING)
    before = await stage_doc(store)
    await asyncio.sleep(0.002)
    assert await store.record_progress(JOB, "clip", {"progress.1": "cutting"})
    doc = await stage_doc(store)
    assert doc["progress"] == {"0": "queued", "1": "cutting"} and doc["status"] == "RUNNING"
    assert before["updated_at"] < doc["updated_at"]
    assert_recent_utc(doc["updated_at"])


@pytest.mark.parametrize("end", sorted(TERMINAL))
async def test_progress_is_refused_once_a_stage_is_finished(end: StageStatus) -> None:
    store, _ = mongo_store()
    await store.transition(JOB, "clip", StageStatus.RUNNING, {"progress": {"done": 1}})
    await store.transition(JOB, "clip", end)
    before = await stage_doc(store)
    assert not await store.record_progress(JOB, "clip", {"progress": {"done": 2}})
    assert await stage_doc(store) == before


# --- JobStatusRecorder: the same record on the store and on its in-memory fake ------------


@pytest.fixture(params=["JobStore", "MemoryJobs"])
def repo(request: pytest.FixtureRequest) -> JobRepo:
    return mongo_store()[0] if request.param == "JobStore" else MemoryJobs()


async def test_a_started_stage_names_its_tenant_and_correlation(repo: JobRepo) -> None:
    event = clip_request(request_id="req-7", correlation_id="corr-7")
    await JobStatusRecorder(repo).started("clip", event)
    doc = await repo.stage("req-7", "clip")
    assert doc is not None and doc["status"] == "RUNNING"
    assert (doc["tenant_id"], doc["correlation_id"]) == ("acme", "corr-7")


async def test_a_finished_stage_keeps_its_outputs_as_json(repo: JobRepo) -> None:
    recorder, event = JobStatusRecorder(repo), clip_request(request_id="req-7")
    outputs = [clip_ready("req-7"), clip_ready("req-7")]
    await recorder.started("clip", event)
    await recorder.finished("clip", event, outputs, failed=False)
    doc = await repo.stage("req-7", "clip")
    assert doc is not None and doc["status"] == "COMPLETED"
    # What a status read returns as it is: plain JSON, the events in emit order.
    assert doc["outputs"] == [json.loads(e.model_dump_json()) for e in outputs]
    assert "operator_detail" not in doc


async def test_a_failed_stage_keeps_the_operator_detail(repo: JobRepo) -> None:
    recorder, event = JobStatusRecorder(repo), clip_request(request_id="req-7")
    await recorder.started("clip", event)
    await recorder.progress("clip", event, {"progress": {"done": 1}})
    await recorder.finished("clip", event, [], failed=True, detail="ffmpeg exit 1")
    await recorder.progress("clip", event, {"progress": {"done": 2}})
    doc = await repo.stage("req-7", "clip")
    assert doc is not None
    assert (doc["status"], doc["outputs"], doc["operator_detail"]) == (
        "FAILED",
        [],
        "ffmpeg exit 1",
    )
    assert doc["progress"] == {"done": 1}
