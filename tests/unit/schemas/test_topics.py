"""Topic registry: placement of every event, naming, keys and DLQs."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path

import pytest

import schemas
from schemas.example_events import EXAMPLES
from schemas.registry import EVENT_MODELS, EVENT_TYPES, UnknownEventType
from schemas.topics import DLQ_RETENTION_MS, TOPICS, Topic, TopicRegistry

pytestmark = pytest.mark.unit


def test_every_event_type_is_on_exactly_one_topic() -> None:
    placements = Counter(event_type for topic in TOPICS for event_type in topic.event_types)
    assert set(placements) == EVENT_TYPES
    assert all(count == 1 for count in placements.values())
    assert TOPICS.event_types() == EVENT_TYPES


def test_names_are_unique_including_dlqs() -> None:
    names = [topic.name for topic in TOPICS] + [dlq.name for dlq in TOPICS.dlqs()]
    assert len(names) == len(set(names)) == 2 * len(TOPICS)
    assert all(topic.name.startswith("tapedeck.") for topic in TOPICS)


def test_every_request_topic_has_a_results_topic_listened_to() -> None:
    # Request/reply waiters follow results(): a stage whose outcomes land elsewhere
    # would leave its callers waiting until their deadline.
    results = {t.name for t in TOPICS.results()}
    assert results and all(name.endswith(".results") for name in results)
    for topic in TOPICS:
        if not topic.name.endswith(".results"):
            assert topic.name.rsplit(".", 1)[0] + ".results" in results, topic.name


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_for_event(event_type: str) -> None:
    topic = TOPICS.for_event(event_type)
    assert event_type in topic.event_types


def test_for_event_unknown() -> None:
    with pytest.raises(UnknownEventType):
        TOPICS.for_event("clip.exploded")


def test_attribute_and_name_access_agree() -> None:
    assert TOPICS.clip_requests is TOPICS["tapedeck.clip.requests"]
    assert TOPICS.clip_requests.key_field == "request_id"
    assert TOPICS.for_event("clip.failed") is TOPICS.clip_results
    assert TOPICS.for_event("job.requested") is TOPICS.jobs_requests
    with pytest.raises(KeyError):
        TOPICS["tapedeck.nope"]


def test_prefixed_names() -> None:
    topic = TOPICS.clip_requests
    assert topic.full_name() == "tapedeck.clip.requests"
    assert topic.full_name("dev-") == "dev-tapedeck.clip.requests"
    assert topic.dlq_name("dev-") == "dev-tapedeck.clip.requests.dlq"


@pytest.mark.parametrize("key", sorted(EVENT_MODELS), ids=[k[0] for k in sorted(EVENT_MODELS)])
def test_key_for_uses_the_topics_key_field(key: tuple[str, int]) -> None:
    event = EXAMPLES[key]
    topic = TOPICS.for_event(event.event_type)
    assert topic.key_field in EVENT_MODELS[key].model_fields
    assert topic.key_for(event) == getattr(event, topic.key_field).encode("utf-8")


def test_key_for_refuses_events_from_another_topic() -> None:
    with pytest.raises(ValueError, match="does not belong"):
        TOPICS.clip_requests.key_for(EXAMPLES[("clip.ready", 1)])


def test_dlq_spec() -> None:
    for topic in TOPICS:
        dlq = topic.dlq()
        assert dlq.name == topic.name + ".dlq"
        assert dlq.full_name("p.") == topic.dlq_name("p.")
        assert dlq.event_types == ()
        assert dlq.key_field == topic.key_field
        assert dlq.retention_ms == DLQ_RETENTION_MS == 14 * 24 * 3600 * 1000
        assert topic.retention_ms is None or dlq.retention_ms > topic.retention_ms
        assert not dlq.compacted


def test_config_for_the_admin_client() -> None:
    assert TOPICS.audio_jobs.config() == {
        "cleanup.policy": "delete",
        "retention.ms": str(7 * 24 * 3600 * 1000),
    }
    compacted = replace(TOPICS.audio_jobs, compacted=True, retention_ms=None)
    assert compacted.config() == {"cleanup.policy": "compact"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"partitions": 0},
        {"retention_ms": 0},
        {"name": "Tapedeck Jobs"},
        {"name": "tapedeck..jobs"},
        {"event_types": ("clip.ready", "clip.ready")},
    ],
)
def test_topic_rejects_bad_declarations(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        replace(TOPICS.clip_results, **kwargs)  # type: ignore[arg-type]


def _registry_with(**overrides: Topic) -> TopicRegistry:
    current = {field.name: getattr(TOPICS, field.name) for field in fields(TOPICS)}
    return TopicRegistry(**(current | overrides))


def test_registry_rejects_an_event_on_two_topics() -> None:
    doubled = replace(
        TOPICS.clip_results, event_types=(*TOPICS.clip_results.event_types, "clip.requested")
    )
    with pytest.raises(ValueError, match=r"clip\.requested is on both"):
        _registry_with(clip_results=doubled)


def test_registry_rejects_a_misnamed_slot() -> None:
    with pytest.raises(ValueError, match="must agree"):
        _registry_with(clip_results=replace(TOPICS.clip_results, name="tapedeck.clip.outcomes"))


def test_readme_catalogue_matches_the_registry() -> None:
    readme = (Path(schemas.__file__).parent / "README.md").read_text(encoding="utf-8")
    rows = set(
        re.findall(r"^\| `([a-z.]+)` \| `([a-z.]+)` \| `(\w+)` \| ([\d, ]+) \|", readme, re.M)
    )
    expected = {
        (event_type, topic.name, topic.key_field, str(version))
        for topic in TOPICS
        for event_type in topic.event_types
        for (known, version) in EVENT_MODELS
        if known == event_type
    }
    assert rows == expected
