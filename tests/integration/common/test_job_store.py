"""Job store and ledger against the real MongoDB wire-protocol server."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from pymongo.errors import DuplicateKeyError

from services.common.checkpoints import MongoCheckpoints
from services.common.job_store import JobStore, StageStatus
from services.common.ledger import MongoLedger
from services.common.mongo import connect, database, scans_unless_by_id
from services.common.settings import Settings


# Both ways of writing a stage record: the conditional update every server applies, and
# the read by _id then write by _id the store picks on a server that scans for any other
# filter (FerretDB 1.x, this suite's server).
@pytest.fixture(params=[False, True], ids=["conditional", "by_id"])
async def store(settings: Settings, request: pytest.FixtureRequest):
    client = connect(settings)
    db = database(client, settings)
    js = JobStore(db, by_id=request.param)
    await js.ensure_indexes()
    yield js, db
    await client.close()


async def test_unique_compound_index_rejects_a_duplicate(store) -> None:
    js, db = store
    await js.transition("job-1", "clip", StageStatus.PENDING)
    with pytest.raises(DuplicateKeyError):
        # Same (job_id, stage) under another _id: only the compound index can refuse it.
        await db["job_stages"].insert_one({"_id": "other", "job_id": "job-1", "stage": "clip"})


async def test_status_only_moves_forward(store) -> None:
    js, _ = store
    assert await js.transition("job-1", "audio", StageStatus.RUNNING)
    assert await js.transition("job-1", "audio", StageStatus.COMPLETED, {"output": "k1"})
    # A late RUNNING and a duplicate FAILED must not move it back or sideways.
    assert not await js.transition("job-1", "audio", StageStatus.RUNNING)
    assert not await js.transition("job-1", "audio", StageStatus.FAILED)
    assert not await js.transition("job-1", "audio", StageStatus.PENDING)
    doc = await js.stage("job-1", "audio")
    assert doc is not None and doc["status"] == "COMPLETED" and doc["output"] == "k1"


async def test_two_stages_updating_one_job_at_once_lose_nothing(store) -> None:
    js, _ = store
    await js.create_job("job-c", "acme", "audio", {"spec": {"n": 1}})

    async def stage_updates(stage: str, i: int) -> None:
        if i == 0:
            await js.transition("job-c", stage, StageStatus.RUNNING)
        await js.record_progress("job-c", stage, {f"progress.{i}": i})

    for i in range(200):
        await asyncio.gather(stage_updates("audio", i), stage_updates("video", i))
    await asyncio.gather(
        js.transition("job-c", "audio", StageStatus.COMPLETED, {"soundtrack": "a.mp3"}),
        js.transition("job-c", "video", StageStatus.COMPLETED, {"video": "v.mp4"}),
    )
    job = await js.job("job-c")
    assert job is not None
    assert job["spec"] == {"n": 1}
    for stage in ("audio", "video"):
        doc = job["stages"][stage]
        assert doc["status"] == "COMPLETED"
        assert len(doc["progress"]) == 200, f"{stage} lost updates"
    assert job["stages"]["audio"]["soundtrack"] == "a.mp3"
    assert job["stages"]["video"]["video"] == "v.mp4"


async def test_ledger_records_once(settings: Settings) -> None:
    client = connect(settings)
    try:
        ledger = MongoLedger(database(client, settings))
        assert not await ledger.seen("clip", "e1")
        await asyncio.gather(*(ledger.record("clip", "e1", ["o1"]) for _ in range(5)))
        assert await ledger.seen("clip", "e1")
        assert not await ledger.seen("merge", "e1")
        assert await database(client, settings)["processed_events"].count_documents({}) == 1
    finally:
        await client.close()


async def test_racing_first_writers_both_land_in_order(store) -> None:
    js, _ = store
    for n in range(20):
        job = f"race-{n}"
        # Both miss the conditional update, then race to insert: the loser's retry must
        # still move the stage forward, so COMPLETED is never lost to a late RUNNING.
        moved = await asyncio.gather(
            js.transition(job, "clip", StageStatus.RUNNING),
            js.transition(job, "clip", StageStatus.COMPLETED, {"outputs": [n]}),
        )
        doc = await js.stage(job, "clip")
        assert doc is not None and doc["status"] == "COMPLETED" and doc["outputs"] == [n]
        assert moved[1] is True


async def test_progress_is_refused_once_a_stage_is_finished(store) -> None:
    js, _ = store
    await js.transition("job-p", "audio", StageStatus.RUNNING)
    assert await js.record_progress("job-p", "audio", {"progress": {"done": 1}})
    await js.transition("job-p", "audio", StageStatus.FAILED, {"error": "x"})
    assert not await js.record_progress("job-p", "audio", {"progress": {"done": 2}})
    doc = await js.stage("job-p", "audio")
    assert doc is not None and doc["progress"] == {"done": 1} and doc["status"] == "FAILED"


async def test_checkpoints_are_kept_per_stage_event_and_step(store) -> None:
    _, db = store
    checkpoints = MongoCheckpoints(db)
    await checkpoints.ensure_indexes()
    assert await checkpoints.load("audio", "e1", "scene-1") is None
    await checkpoints.save("audio", "e1", "scene-1", {"request_id": "abc", "n": 1})
    await checkpoints.save("audio", "e1", "scene-1", {"request_id": "abc", "n": 2})
    assert await checkpoints.load("audio", "e1", "scene-1") == {"request_id": "abc", "n": 2}
    assert await checkpoints.load("audio", "e2", "scene-1") is None
    assert await checkpoints.load("merge", "e1", "scene-1") is None
    assert await db["stage_checkpoints"].count_documents({}) == 1


async def test_stages_of_several_jobs_come_back_per_job(store) -> None:
    js, _ = store
    await js.transition("job-s", "audio", StageStatus.RUNNING)
    await js.transition("job-s", "merge.concat", StageStatus.COMPLETED, {"output": "v"})
    await js.transition("job-s.voice", "voiceover", StageStatus.RUNNING)
    await js.transition("job-other", "audio", StageStatus.RUNNING)
    both = await js.stages_of("job-s", "job-s.voice", "job-none")
    assert sorted(both) == ["job-none", "job-s", "job-s.voice"]
    assert sorted(both["job-s"]) == ["audio", "merge.concat"]
    assert both["job-s"]["merge.concat"]["output"] == "v"
    assert list(both["job-s.voice"]) == ["voiceover"]
    assert both["job-none"] == {}
    # One job alone reads the same as through job().
    one = await js.stages_of("job-s")
    whole = await js.job("job-s")
    assert whole is not None and one["job-s"] == whole["stages"]


async def test_the_server_in_use_is_asked_once_how_to_write(settings: Settings) -> None:
    client = connect(settings)
    try:
        db = database(client, settings)
        expected = await scans_unless_by_id(db)
        # The local stack runs FerretDB 1.x unless a mongod is on PATH (scripts/stack.py).
        assert expected is (shutil.which("mongod") is None)
        js = JobStore(db)
        assert await js.transition("job-q", "audio", StageStatus.RUNNING)
        assert js._by_id is expected
        assert not await js.transition("job-q", "audio", StageStatus.PENDING)
        assert await js.record_progress("job-q", "audio", {"progress": {"done": 1}})
    finally:
        await client.close()
