"""The runtime against the real stack: every adapter opened, and on a failure while opening
one, those already open are closed again."""

from __future__ import annotations

import pytest

from schemas import TOPICS
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.media_store import MediaStore
from services.common.settings import Settings
from services.submitter.listener import ResultsListener
from services.submitter.runtime import open_runtime
from tests.integration.submitter.kit import submitter_settings


async def test_opens_every_adapter_and_follows_every_result_topic(settings: Settings) -> None:
    await ensure_topics(settings, TOPICS.results())
    async with open_runtime(submitter_settings(settings)) as runtime:
        assert runtime.listener.ready
        assert set(runtime.listener.topics) == {
            t.full_name(settings.topic_prefix) for t in TOPICS.results()
        }
        assert runtime.requests().waiter is runtime.waiter
    assert not runtime.listener.ready


async def test_a_failing_adapter_closes_the_ones_already_open(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    real_stop, real_exit = KafkaEmitter.stop, MediaStore.__aexit__

    async def emitter_stop(self: KafkaEmitter) -> None:
        closed.append("kafka")
        await real_stop(self)

    async def media_exit(self: MediaStore, *exc: object) -> None:
        closed.append("s3")
        await real_exit(self, *exc)  # type: ignore[arg-type]

    async def broken_start(self: ResultsListener, ready_timeout_s: float = 30.0) -> bool:
        raise RuntimeError("listener cannot start")

    monkeypatch.setattr(KafkaEmitter, "stop", emitter_stop)
    monkeypatch.setattr(MediaStore, "__aexit__", media_exit)
    monkeypatch.setattr(ResultsListener, "start", broken_start)
    with pytest.raises(RuntimeError, match="listener cannot start"):
        async with open_runtime(submitter_settings(settings)):
            pytest.fail("the runtime opened without its listener")
    # Closed in reverse order of opening.
    assert closed == ["kafka", "s3"]
