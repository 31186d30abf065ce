"""What can still be read of a request that failed validation."""

from __future__ import annotations

import json

import pytest

from schemas.clip import ClipRequested
from services.common.codec import RawMessage
from services.common.invalid import readable_envelope
from tests.support.events import clip_request


def test_the_envelope_of_a_readable_request_names_its_sender() -> None:
    body = json.loads(clip_request().model_dump_json())
    body["start_ms"] = "not a number"
    envelope = readable_envelope(RawMessage(topic="t", value=json.dumps(body).encode()),
                                 ClipRequested, "request_id")  # fmt: skip
    assert envelope is not None
    assert (envelope.subject_id, envelope.tenant_id) == (body["request_id"], body["tenant_id"])


@pytest.mark.parametrize(
    "value",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
    ids=["array", "object"],
)
def test_json_nested_deeper_than_the_parser_goes_is_unreadable_not_a_crash(
    value: bytes,
) -> None:
    # json.loads raises RecursionError here, not ValueError: uncaught, it killed the agent
    # with the event unacked, and its partition stood still.
    message = RawMessage(topic="t", value=value)
    assert readable_envelope(message, ClipRequested, "request_id") is None
