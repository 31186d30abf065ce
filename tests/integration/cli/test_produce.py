"""``tapedeck produce`` against the real Kafka: a valid event lands keyed and with the
emitter's headers; a refused one puts nothing on the topic."""

from __future__ import annotations

import json
from pathlib import Path

from schemas import TOPICS, decode_event
from schemas.clip import ClipRequested
from schemas.export import PACKAGE_DIR
from services.common.codec import event_headers
from services.common.obs import trace
from services.common.settings import Settings
from tests.integration.cli.command import tapedeck
from tests.support.kafka import read


def clip_request(request_id: str) -> ClipRequested:
    return ClipRequested(
        request_id=request_id,
        tenant_id="acme",
        producer="ops-desk",
        episode_id="ep-1",
        start_ms=1000,
        duration_ms=2000,
    )


async def test_a_valid_event_lands_with_its_key_and_the_emitters_headers(
    settings: Settings, tmp_path: Path
) -> None:
    event = clip_request("req-cli-1")
    path = tmp_path / "event.json"
    path.write_text(event.model_dump_json(indent=2))  # pretty, as people write them

    code, out, err = await tapedeck(settings, "produce", "clip.requests", str(path), "--json")
    assert code == 0, err
    answer = json.loads(out)
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    assert answer["topic"] == topic and answer["produced"] is True
    assert answer["key"] == "req-cli-1" and answer["event_id"] == str(event.event_id)

    [record] = await read(settings, topic, 1, settle_s=0.5)
    assert record.key == b"req-cli-1"
    # The emitter's headers: the event's routing facts, and the trace it starts.
    trace_header = ("traceparent", f"00-{answer['trace_id']}-".encode())
    assert list(record.headers)[:-1] == event_headers(event)
    name, value = list(record.headers)[-1]
    assert (name, value[:36]) == trace_header and trace.parse(value) is not None
    assert answer["headers"]["traceparent"] == value.decode()
    assert decode_event(record.value) == event
    assert (record.partition, record.offset) == (answer["partition"], answer["offset"])


async def test_refused_events_put_nothing_on_the_topic(settings: Settings, tmp_path: Path) -> None:
    bad = json.loads(clip_request("req-bad").model_dump_json())
    bad["duration_ms"] = "long"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    wrong_topic = PACKAGE_DIR / "examples" / "clip.ready.json"

    code, out, err = await tapedeck(
        settings, "produce", "clip.requests", str(tmp_path / "bad.json")
    )
    assert (code, out) == (1, "")
    assert err == (
        "tapedeck: refused, nothing produced: clip.requested v1 breaks its JSON Schema: "
        "duration_ms: 'long' is not of type 'integer'\n"
    )
    code, out, err = await tapedeck(settings, "produce", "clip.requests", str(wrong_topic))
    assert (code, out) == (1, "")
    assert "event_type 'clip.ready' does not belong on topic tapedeck.clip.requests" in err
    checked = clip_request("req-checked").model_dump_json().encode()
    code, out, err = await tapedeck(
        settings, "produce", "clip.requests", "-", "--check", stdin=checked
    )
    assert code == 0, err
    assert out.startswith("ok: clip.requested v1 fits") and "nothing produced" in out

    # The one event produced after them is all the topic holds.
    good = clip_request("req-good").model_dump_json().encode()
    code, _, err = await tapedeck(settings, "produce", "clip.requests", "-", stdin=good)
    assert code == 0, err
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    records = await read(settings, topic, 1, settle_s=1.0)
    assert [r.key for r in records] == [b"req-good"]
