"""A production job whose audio provider (fal.ai's contract server) answers 429, 500,
times out, sends a malformed body or never leaves its queue: the agent retries, then the
job's audio fails cleanly with the provider's reason in plain words, and the video is
still delivered. A provider that recovers within the retries gives the job its audio."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from schemas.codes import Code, public_message
from services.common.media_store import MediaStore
from tests.reliability.support import Stack
from tests.support.contract.fal import FalContract

RETRIES = 2  # PROVIDER_MAX_RETRIES of the shared pipeline (conftest.PROVIDER_ENV)


Fault = Callable[[FalContract], None]


def forever(op: str, status: int, body: Any = None, **headers: str) -> Fault:
    return lambda c: c.fail(op, status, body, headers=headers, times=1000)


def slow_submit(c: FalContract) -> None:
    c.slow("submit", 5.0, times=1000)  # past PROVIDER_READ_TIMEOUT_S


def malformed_result(c: FalContract) -> None:
    c.fail("result", 200, times=1000)  # an empty body where the result document belongs


def stuck_in_queue(c: FalContract) -> None:
    c.script({"status": "IN_QUEUE", "queue_position": 7})


# (scenario, the code the audio fails with, submissions made: None when not fixed)
FAILING = [
    ("429", forever("submit", 429, {"detail": "Too many requests"}, **{"Retry-After": "0"}),
     Code.PROVIDER_RATE_LIMITED, 1 + RETRIES),
    ("500", forever("submit", 500, {"detail": "GPU pool exhausted"}),
     Code.PROVIDER_UNAVAILABLE, 1 + RETRIES),
    ("timeout", slow_submit, Code.PROVIDER_TIMEOUT, None),
    ("malformed body", malformed_result, Code.PROVIDER_FAILED, None),
    ("never-ending queue", stuck_in_queue, Code.PROVIDER_TIMEOUT, 1),
]  # fmt: skip


def audio_job(stack: Stack) -> dict[str, Any]:
    spec = stack.workload.spec("production", tier="standard", sound="sfx")
    # One scene, so the count of submissions is the count of tries.
    spec["scenes"] = spec["scenes"][:1]
    spec["audio_params"]["error_strategy"] = "halt"
    return spec


@pytest.mark.parametrize(("scenario", "fault", "code", "submits"), FAILING,
                         ids=[f[0] for f in FAILING])  # fmt: skip
async def test_a_failing_provider_fails_the_audio_not_the_job(
    whole: Stack, fal: tuple[FalContract, str], scenario: str,
    fault: Callable[[FalContract], None], code: Code, submits: int | None,
) -> None:  # fmt: skip
    contract, _ = fal
    contract.reset()
    fault(contract)
    job = await whole.workload.submit("production", audio_job(whole))
    await whole.finish([job], timeout_s=120)
    doc = job.doc
    assert doc["audio_status"] == "FAILED", doc
    assert doc["audio_error"] == f"Audio generation failed: scene 0: {public_message(code)}", doc
    # The video is delivered all the same: the result is the joined scenes.
    assert doc["outputs"]["result"] == doc["outputs"]["video"]
    async with MediaStore.from_settings(whole.direct) as media:
        assert await media.head(doc["outputs"]["video"]) is not None
    if submits is not None:
        assert contract.counts["submit"] == submits, contract.counts
    assert contract.counts["submit"] >= 1


async def test_a_provider_that_recovers_within_the_retries_gives_the_job_its_audio(
    whole: Stack, fal: tuple[FalContract, str]
) -> None:
    contract, _ = fal
    contract.reset()
    contract.fail("submit", 503, {"detail": "warming up"}, times=RETRIES)
    job = await whole.workload.submit("production", audio_job(whole))
    await whole.finish([job], timeout_s=120)
    assert job.doc["audio_status"] == "COMPLETED", job.doc
    assert contract.counts["submit"] == 1 + RETRIES
