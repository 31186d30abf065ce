"""The merger's Faust agent on the real stack: requests in over the topic, one outcome
each on the results topic, a redelivered request answered once, and the stage record of
each step."""

from __future__ import annotations

import json
from pathlib import Path

from schemas import TOPICS, decode_event
from schemas.merge import MergeCompleted, MergeFailed
from services.common.job_store import JobStore, StageStatus
from services.common.kafka import ensure_topics
from services.common.media_store import MediaStore
from services.common.mongo import connect, database
from services.common.settings import Settings
from services.merger.app import build_app
from services.merger.settings import MergerSettings
from tests.integration.merger import media
from tests.integration.merger.conftest import Clips, merge_request, put
from tests.support.kafka import produce, read


def merger_settings(settings: Settings) -> MergerSettings:
    return MergerSettings.model_construct(
        **{**MergerSettings().model_dump(), **settings.model_dump(), "merger_concurrency": 2}
    )


async def outcomes(settings: Settings, count: int) -> list[MergeCompleted | MergeFailed]:
    records = await read(settings, TOPICS.merge_results.full_name(settings.topic_prefix), count,
                         timeout_s=90, settle_s=2.0)  # fmt: skip
    events = [decode_event(r.value) for r in records if r.value]
    return [e for e in events if isinstance(e, MergeCompleted | MergeFailed)]


async def test_merge_requests_over_the_topic(
    settings: Settings, store: MediaStore, clips: Clips, tmp_path: Path
) -> None:
    await ensure_topics(settings)
    await put(store, {"in/a.mp4": clips.a, "in/b.mp4": clips.b})
    good = merge_request("concat_video", ["in/a.mp4", "in/b.mp4"], "out/joined.mp4",
                         job_id="job-good", step="concat")  # fmt: skip
    missing = merge_request("concat_video", ["in/a.mp4", "in/gone.mp4"], "out/x.mp4",
                            job_id="job-missing", step="concat")  # fmt: skip
    invalid = json.loads(merge_request("mux", ["in/a.mp4"], "out/y.mp4", job_id="job-invalid",
                                       step="mux").model_dump_json())  # fmt: skip
    invalid["inputs"] = []
    topic = TOPICS.merge_requests.full_name(settings.topic_prefix)
    app = build_app(merger_settings(settings))
    await app.start()
    try:
        await produce(settings, topic, [good.model_dump_json().encode(),
                                        missing.model_dump_json().encode(),
                                        json.dumps(invalid).encode()])  # fmt: skip
        first = await outcomes(settings, 3)
        # The same request again, as after a rebalance: no second effect, no second answer.
        # A new request behind it says when the agent has got that far.
        marker = merge_request("concat_video", ["in/gone.mp4"], "out/z.mp4", job_id="job-marker")
        await produce(settings, topic, [good.model_dump_json().encode(),
                                        marker.model_dump_json().encode()])  # fmt: skip
        second = await outcomes(settings, 4)
        dlq = await read(settings, TOPICS.merge_requests.dlq_name(settings.topic_prefix), 1,
                         settle_s=0.5)  # fmt: skip
    finally:
        await app.stop()

    by_job = {e.job_id: e for e in first}
    assert len(first) == 3 and set(by_job) == {"job-good", "job-missing", "job-invalid"}
    assert sorted(e.job_id for e in second) == ["job-good", "job-invalid", "job-marker",
                                                "job-missing"]  # fmt: skip
    done = by_job["job-good"]
    assert isinstance(done, MergeCompleted)
    assert (done.s3_key, done.copied, done.operation, done.step) == (
        "out/joined.mp4", True, "concat_video", "concat")  # fmt: skip
    out = tmp_path / "joined.mp4"
    await store.download_file("out/joined.mp4", out)
    assert done.size_bytes == out.stat().st_size
    assert media.packets(out) == media.packets(clips.a) + media.packets(clips.b)
    lost = by_job["job-missing"]
    assert isinstance(lost, MergeFailed) and lost.error.code == "input_missing"
    assert lost.error.message == "input 2 is not in storage"
    bad = by_job["job-invalid"]
    assert isinstance(bad, MergeFailed) and bad.error.code == "invalid_merge_request"
    assert bad.step == "mux" and [r.value for r in dlq] == [json.dumps(invalid).encode()]

    mongo = connect(settings)
    try:
        jobs = JobStore(database(mongo, settings))
        stage = await jobs.stage("job-good", "merge.concat")
        assert stage is not None and stage["status"] == StageStatus.COMPLETED
        assert stage["copied"] is True and stage["progress"]["percent"] == 100
        failed = await jobs.stage("job-missing", "merge.concat")
        assert failed is not None and failed["status"] == StageStatus.FAILED
    finally:
        await mongo.close()
