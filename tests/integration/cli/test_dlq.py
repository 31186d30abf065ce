"""``tapedeck dlq`` on the real Kafka and MongoDB: dead letters listed, shown, replayed
(as they were, and edited) onto their original topic, discarded, each settled once."""

from __future__ import annotations

import json
from pathlib import Path

from schemas import TOPICS, decode_event
from schemas.clip import ClipRequested
from services.common.codec import RawMessage, dead_letter_headers, event_headers
from services.common.kafka import KafkaEmitter, ensure_topics
from services.common.settings import Settings
from tests.integration.cli.command import tapedeck
from tests.support.kafka import read


def request(request_id: str) -> ClipRequested:
    return ClipRequested(
        request_id=request_id,
        tenant_id="acme",
        producer="submitter",
        episode_id="ep-1",
        start_ms=0,
        duration_ms=1000,
    )


async def dead_letter(settings: Settings, value: bytes, key: bytes, error: str) -> None:
    """What a stage does with a message it gives up on (services/common/kafka.py)."""
    topic = TOPICS.clip_requests.full_name(settings.topic_prefix)
    msg = RawMessage(topic, value, key, partition=0, offset=41)
    headers = dead_letter_headers(msg, error=error, stage="clipper.decode", exception="E")
    async with KafkaEmitter(settings, "test") as emitter:
        await emitter.dead_letter(msg, headers)


async def test_dead_letters_listed_shown_replayed_and_discarded(
    settings: Settings, tmp_path: Path
) -> None:
    await ensure_topics(settings, [TOPICS.clip_requests, TOPICS.clip_requests.dlq()])
    stuck = request("req-stuck")
    await dead_letter(settings, stuck.model_dump_json().encode(), b"req-stuck", "stage timed out")
    broken = json.loads(request("req-broken").model_dump_json())
    broken["duration_ms"] = "1000"
    await dead_letter(settings, json.dumps(broken).encode(), b"req-broken", "invalid event")
    await dead_letter(settings, b"\xffnot json", b"junk", "not valid JSON")
    dlq = TOPICS.clip_requests.dlq_name(settings.topic_prefix)
    original = TOPICS.clip_requests.full_name(settings.topic_prefix)

    code, out, err = await tapedeck(settings, "dlq", "list", "--json")
    assert code == 0, err
    [summary] = [t for t in json.loads(out) if t["topic"] == dlq]
    assert summary == {"topic": dlq, "original_topic": original, "messages": 3, "pending": 3}

    code, out, err = await tapedeck(settings, "dlq", "list", "clip.requests", "--json")
    assert code == 0, err
    letters = {letter["key"]: letter for letter in json.loads(out)}
    assert set(letters) == {"req-stuck", "req-broken", "junk"}
    assert all(letter["state"] == "pending" for letter in letters.values())
    assert letters["junk"]["value"] == "\\xffnot json"
    refs = {key: letter["ref"] for key, letter in letters.items()}

    code, out, _ = await tapedeck(settings, "dlq", "list", "clip.requests")
    assert code == 0 and refs["junk"] in out and "clipper.decode" in out

    code, out, err = await tapedeck(settings, "dlq", "show", dlq, refs["req-broken"], "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["error"] == "invalid event" and shown["headers"]["original_offset"] == "41"
    assert json.loads(shown["value"]) == broken
    code, out, _ = await tapedeck(settings, "dlq", "show", "clip.requests", refs["req-broken"])
    assert code == 0 and '"duration_ms": "1000"' in out

    # As it was: back on its topic with its key, without the DLQ's headers.
    code, out, err = await tapedeck(
        settings, "dlq", "replay", "clip.requests", refs["req-stuck"], "--as", "alice"
    )
    assert code == 0, err
    assert out == f"{dlq} {refs['req-stuck']}: replayed to {original}\n"

    # Edited: refused unless valid for the topic, then sent with its event's headers.
    (tmp_path / "still-bad.json").write_text(json.dumps(broken))
    code, out, err = await tapedeck(
        settings,
        "dlq",
        "replay",
        "clip.requests",
        refs["req-broken"],
        "--edit",
        str(tmp_path / "still-bad.json"),
    )
    assert (code, out) == (1, "")
    assert err.startswith("tapedeck: invalid_replay: the edited event is not valid: ")
    fixed = request("req-broken")
    code, out, err = await tapedeck(
        settings,
        "dlq",
        "replay",
        "clip.requests",
        refs["req-broken"],
        "--edit",
        "-",
        "--as",
        "bob",
        "--json",
        stdin=fixed.model_dump_json().encode(),
    )
    assert code == 0, err
    replayed = json.loads(out)
    assert replayed["state"] == "replayed" and replayed["actions"][0]["actor"] == "bob (cli)"

    records = await read(settings, original, 2, settle_s=1.0)
    by_key = {r.key: r for r in records}
    assert set(by_key) == {b"req-stuck", b"req-broken"}
    assert decode_event(by_key[b"req-stuck"].value) == stuck
    assert decode_event(by_key[b"req-broken"].value) == fixed
    stuck_headers = dict(by_key[b"req-stuck"].headers)
    assert "error" not in stuck_headers and "original_offset" not in stuck_headers
    assert stuck_headers["attempts"] == b"1"
    assert dict(event_headers(fixed)).items() <= dict(by_key[b"req-broken"].headers).items()

    code, out, err = await tapedeck(settings, "dlq", "discard", "clip.requests", refs["junk"])
    assert code == 0 and out.endswith(": discarded\n"), err
    code, out, err = await tapedeck(settings, "dlq", "discard", "clip.requests", refs["junk"])
    assert (code, out) == (1, "")
    assert err.startswith("tapedeck: dead_letter_settled: ")
    code, _, err = await tapedeck(settings, "dlq", "replay", "clip.requests", refs["req-stuck"])
    assert code == 1 and "dead_letter_settled" in err

    code, out, _ = await tapedeck(settings, "dlq", "list", "clip.requests", "--json")
    states = {letter["key"]: letter["state"] for letter in json.loads(out)}
    assert states == {"req-stuck": "replayed", "req-broken": "replayed", "junk": "discarded"}
    code, out, _ = await tapedeck(settings, "dlq", "list", "--json")
    [summary] = [t for t in json.loads(out) if t["topic"] == dlq]
    assert (summary["messages"], summary["pending"]) == (3, 0)


async def test_unknown_topics_and_dead_letters_are_one_line(settings: Settings) -> None:
    code, _, err = await tapedeck(settings, "dlq", "show", "clip.requests", "0-99")
    assert code == 1 and err == (
        f"tapedeck: no dead letter 0-99 on {TOPICS.clip_requests.dlq_name(settings.topic_prefix)}\n"
    )
    code, _, err = await tapedeck(settings, "dlq", "replay", "clips", "0-1")
    assert code == 2 and err.startswith("tapedeck: no topic 'clips' in the registry")
    code, _, err = await tapedeck(settings, "dlq", "discard", "clip.requests", "zero")
    assert code == 2 and "PARTITION-OFFSET" in err
