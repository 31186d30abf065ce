"""``tapedeck dlq``: naming a DLQ and a dead letter as an operator types them, and a dead
letter as tables and JSON show it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.cli.args import CliError
from services.cli.dlq import (
    CLI_ACTOR_ID,
    actor,
    dlq_topic_name,
    letter_json,
    parse_ref,
    print_letter,
)
from services.ops.actions import ActionRecord
from services.ops.dlq import DeadLetter

LETTER = DeadLetter(
    topic="t1.tapedeck.clip.requests.dlq",
    partition=2,
    offset=7,
    timestamp=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    key=b"req-1",
    value=b'{"event_type": "clip.requested", "bad": "[red]x"}',
    headers={"error": "invalid event: bad: extra", "stage": "clipper.decode", "attempts": "2"},
    error="invalid event: bad: extra",
    stage="clipper.decode",
    original_topic="t1.tapedeck.clip.requests",
    first_seen=datetime(2025, 1, 2, 3, 0, tzinfo=UTC),
    attempts=2,
    state="replayed",
    actions=[
        ActionRecord(
            datetime(2025, 1, 2, 4, 0, tzinfo=UTC),
            "alice (cli)",
            "replayed",
            "replayed to t1.tapedeck.clip.requests",
        )
    ],
)


def test_a_dlq_is_named_any_way_an_operator_would() -> None:
    for name in (
        "clip.requests",
        "clip.requests.dlq",
        "tapedeck.clip.requests",
        "tapedeck.clip.requests.dlq",
        "t1.tapedeck.clip.requests.dlq",
    ):
        assert dlq_topic_name(name, "t1.") == "t1.tapedeck.clip.requests.dlq"
    assert dlq_topic_name("jobs.results", "") == "tapedeck.jobs.results.dlq"
    with pytest.raises(CliError) as exc:
        dlq_topic_name("clips", "t1.")
    assert exc.value.code == 2 and "no topic 'clips'" in exc.value.message


def test_a_dead_letter_is_partition_and_offset() -> None:
    assert parse_ref("2-7") == (2, 7) == parse_ref("2:7") == parse_ref(" 2/7 ")
    for bad in ("2", "a-b", "-1-2", "2-7-1"):
        with pytest.raises(CliError) as exc:
            parse_ref(bad)
        assert exc.value.code == 2 and "PARTITION-OFFSET" in exc.value.message


def test_the_actor_is_named_or_the_login(monkeypatch: pytest.MonkeyPatch) -> None:
    assert actor("bob").label == f"bob ({CLI_ACTOR_ID})"
    monkeypatch.setenv("LOGNAME", "carol")
    monkeypatch.setenv("USER", "carol")
    assert actor(None).name == "carol"


def test_json_has_stable_keys_and_text_values(capsys: pytest.CaptureFixture[str]) -> None:
    doc = letter_json(LETTER)
    assert list(doc) == [
        "topic",
        "partition",
        "offset",
        "ref",
        "timestamp",
        "key",
        "value",
        "headers",
        "error",
        "stage",
        "original_topic",
        "first_seen",
        "attempts",
        "state",
        "actions",
    ]
    assert doc["ref"] == "2-7" and doc["timestamp"] == "2025-01-02T03:04:05Z"
    assert doc["actions"] == [
        {
            "at": "2025-01-02T04:00:00Z",
            "actor": "alice (cli)",
            "action": "replayed",
            "detail": "replayed to t1.tapedeck.clip.requests",
        }
    ]
    binary = letter_json(
        DeadLetter(**{**LETTER.__dict__, "key": None, "value": b"\xff\x00", "actions": []})
    )
    assert binary["key"] is None and binary["value"] == "\\xff\x00"
    print_letter(LETTER, as_json=True)
    assert json.loads(capsys.readouterr().out) == doc


def test_show_prints_headers_and_the_body_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    print_letter(LETTER, as_json=False)
    out = capsys.readouterr().out
    for expected in (
        "t1.tapedeck.clip.requests.dlq 2-7",
        "clipper.decode",
        "replayed",
        "alice (cli)",
        '"bad": "[red]x"',
    ):
        assert expected in out
