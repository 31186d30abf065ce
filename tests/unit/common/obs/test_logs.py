"""Process logging: JSON lines (or text) with the service, the bound job/event/stage/
tenant fields and the trace; one ``exc`` field for an exception; every record scrubbed
of credentials, in its message, its arguments and its exception."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from services.audio_agent.settings import AudioAgentSettings
from services.common.obs import trace
from services.common.obs.logs import (
    annotate,
    bind,
    bound,
    configure_logging,
    event_fields,
    secrets_of,
)
from tests.support.events import clip_request

API_KEY = "td_0123456789ab_" + "Zq3-_x" * 7 + "A"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw/9+vJ0Q0d4E="
# A provider key with no recognisable shape: only the configured value finds it.
FAL = "plainprovidervalue"
S3_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

log = logging.getLogger("tests.obs")


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = sys.excepthook, threading.excepthook, sys.unraisablehook
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook, threading.excepthook, sys.unraisablehook = hooks


@pytest.fixture
def out(restore_root: None) -> Captured:
    captured = Captured()
    configure_logging("clipper", "DEBUG", "json", secrets=[FAL, S3_SECRET, "short"],
                      stream=captured.stream)  # fmt: skip
    return captured


def test_a_line_is_one_json_object_with_the_core_fields(out: Captured) -> None:
    log.info("hello %s", "world")
    [line] = out.lines()
    assert set(line) == {"time", "level", "logger", "message", "service"}
    assert (line["level"], line["logger"], line["message"], line["service"]) == (
        "INFO", "tests.obs", "hello world", "clipper")  # fmt: skip
    assert line["time"].endswith("Z")
    at = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    assert at.tzinfo is not None and abs((datetime.now(UTC) - at).total_seconds()) < 60


def test_bound_fields_and_the_trace_are_on_every_line_of_the_block(out: Captured) -> None:
    ctx = trace.start(None)
    with trace.use(ctx), bind(job_id="job-1", stage="merger", tenant="acme"):
        log.info("one")
        with bind(event_id="e-1", tenant=None):
            log.warning("two")
        log.info("three")
    log.info("after")
    one, two, three, after = out.lines()
    expected = {"job_id": "job-1", "stage": "merger", "tenant": "acme",
                "trace_id": ctx.trace_id, "span_id": ctx.span_id}  # fmt: skip
    assert {k: one[k] for k in expected} == expected
    assert two["event_id"] == "e-1" and two["tenant"] == "acme"  # None binds nothing
    assert "event_id" not in three and three["job_id"] == "job-1"
    assert not set(after) & {"job_id", "stage", "tenant", "trace_id", "span_id", "event_id"}


def test_annotate_adds_to_the_innermost_block_only(out: Captured) -> None:
    with bind(stage="submitter"):
        annotate(tenant="acme")
        log.info("inside")
    log.info("outside")
    inside, outside = out.lines()
    assert inside["tenant"] == "acme" and "tenant" not in outside
    assert bound() == {}


def test_reserved_names_cannot_be_bound() -> None:
    with pytest.raises(ValueError, match="message"), bind(message="x"):
        pass


async def test_concurrent_tasks_log_their_own_fields(out: Captured) -> None:
    async def work(job_id: str) -> None:
        with bind(job_id=job_id):
            await asyncio.sleep(0.01)
            log.info("working on %s", job_id)

    await asyncio.gather(work("job-a"), work("job-b"))
    lines = out.lines()
    assert len(lines) == 2
    assert all(line["message"] == f"working on {line['job_id']}" for line in lines)


def test_an_exception_is_one_exc_field_on_one_line(out: Captured) -> None:
    try:
        raise RuntimeError("disk full\non two lines")
    except RuntimeError:
        log.exception("upload failed")
    assert len(out.text.splitlines()) == 1
    [line] = out.lines()
    assert line["message"] == "upload failed" and line["level"] == "ERROR"
    assert line["exc"].startswith("Traceback") and "RuntimeError: disk full" in line["exc"]


@pytest.mark.parametrize(
    ("secret", "text"),
    [
        (API_KEY.split("_", 2)[2], f"rejected {API_KEY}"),
        (WHSEC.removeprefix("whsec_"), f"secret {WHSEC}"),
        ("abc123:def456", "Authorization: Key abc123:def456"),
        ("r8_Ab12Cd34Ef56", "{'Authorization': 'Token r8_Ab12Cd34Ef56'}"),
        ("sk_3f2a9c8b7d6e", "xi-api-key: sk_3f2a9c8b7d6e"),
        (FAL, f"env FAL_KEY={FAL}"),
        (FAL, f"submitted with {FAL}"),
        (S3_SECRET, f"client for {S3_SECRET}"),
        ("fe5f80f77d5fa3be", "got https://s3/b/k?X-Amz-Signature=fe5f80f77d5fa3be&a=b"),
        ("fe5f80f77d5fa3be", "X-Amz-Signature=fe5f80f77d5fa3be"),
        ("AKIAIOSFODNN7EXAMPLE", "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1"),
    ],
)
def test_secrets_are_scrubbed_from_message_args_and_exception(
    out: Captured, secret: str, text: str
) -> None:
    log.warning(text)
    log.warning("in the arguments: %s", text)
    try:
        raise ValueError(text)
    except ValueError:
        log.exception("while calling out")
    assert secret not in out.text, out.text
    lines = out.lines()
    assert len(lines) == 3 and all("<redacted>" in json.dumps(line) for line in lines)


def test_a_short_configured_secret_does_not_mask_ordinary_words(out: Captured) -> None:
    log.info("a short answer")
    assert out.lines()[0]["message"] == "a short answer"


def test_text_format_names_the_fields(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging("merger", "INFO", "text", stream=stream)
    with bind(job_id="job-1", stage="merger"):
        log.debug("hidden below INFO")
        log.info("muxing with Bearer abcdefgh123456")
    [line] = stream.getvalue().splitlines()
    assert " INFO merger tests.obs: muxing with Bearer <redacted> [job_id=job-1 stage=merger]" in (
        line
    )


def test_an_unknown_format_is_refused(restore_root: None) -> None:
    with pytest.raises(ValueError, match="json, text"):
        configure_logging("clipper", "INFO", "xml")


def test_configure_replaces_the_handlers(out: Captured) -> None:
    again = Captured()
    configure_logging("clipper", "INFO", "json", stream=again.stream)
    log.info("once")
    assert out.text == "" and len(again.lines()) == 1


def test_the_secrets_of_a_settings_object_are_its_secret_values() -> None:
    settings = AudioAgentSettings(FAL_KEY=SecretStr("fal-value-1"),
                                  S3_SECRET_KEY=SecretStr("s3-value-1"))  # fmt: skip
    found = secrets_of(settings)
    assert "fal-value-1" in found and "s3-value-1" in found


def test_a_stage_binds_the_job_the_event_belongs_to() -> None:
    # A voiceover runs as the job "<job>.vo": its lines are the production job's.
    event = clip_request(request_id="job-9.vo", tenant_id="acme")
    assert event_fields(event) == {"job_id": "job-9", "event_id": str(event.event_id),
                                   "tenant": "acme"}  # fmt: skip


def test_an_exception_nothing_caught_is_a_line_too(out: Captured) -> None:
    def fail() -> None:
        raise RuntimeError(f"thread died holding {API_KEY}")

    thread = threading.Thread(target=fail, name="worker-1")
    thread.start()
    thread.join()
    [line] = out.lines()
    assert line["logger"] == "uncaught" and "worker-1" in line["message"]
    assert "RuntimeError: thread died" in line["exc"] and API_KEY not in out.text
