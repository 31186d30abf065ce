"""Following a job: a bar for the job and one per stage, until the job ends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from services.cli.args import CliError
from services.cli.follow import Bars, end_code, follow, progress_display
from tests.support.fake_api import job


def script(*states: Mapping[str, Any]) -> Any:
    answers = list(states)
    calls: list[int] = []

    async def fetch() -> Mapping[str, Any]:
        calls.append(1)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    fetch.calls = calls  # type: ignore[attr-defined]
    return fetch


async def test_follow_polls_until_the_job_ends() -> None:
    fetch = script(
        job("j", "PENDING"),
        job("j", "RUNNING", 30, stages=[{"name": "audio", "status": "RUNNING", "progress": 60}]),
        job("j", "COMPLETED", 100, stages=[{"name": "audio", "status": "COMPLETED"}]),
        job("j", "RUNNING"),  # never read
    )
    last = await follow(fetch, "j", interval_s=0.001, timeout_s=None, show=False)
    assert last["status"] == "COMPLETED" and len(fetch.calls) == 3
    assert end_code(last) == 0
    assert end_code({"status": "FAILED"}) == 1 and end_code({"status": "CANCELLED"}) == 1


async def test_waiting_gives_up_after_the_timeout_and_says_the_job_goes_on() -> None:
    with pytest.raises(CliError) as exc:
        await follow(script(job("j", "RUNNING")), "j", interval_s=0.01, timeout_s=0.05, show=False)
    assert exc.value.code == 1
    assert "job j is still RUNNING after 0.05 s" in exc.value.message
    assert "tapedeck jobs watch j" in exc.value.message


def test_bars_follow_the_stages_as_they_appear() -> None:
    with progress_display(enabled=False) as progress:
        bars = Bars(progress, "j")
        bars.update(
            job("j", "RUNNING", 20, stages=[{"name": "audio", "status": "RUNNING", "progress": 40}])
        )
        bars.update(
            job(
                "j",
                "RUNNING",
                70,
                stages=[
                    {"name": "audio", "status": "COMPLETED", "progress": 90},
                    {
                        "name": "merge.mux-v1",
                        "status": "FAILED",
                        "progress": 10,
                        "error": {"code": "ffmpeg_failed", "message": "the tool failed"},
                    },
                ],
            )
        )
        tasks = {t.description.strip(): t for t in progress.tasks}
    assert list(tasks) == ["job j", "audio", "merge.mux-v1"]
    assert tasks["job j"].completed == 70 and tasks["job j"].fields["status"] == "RUNNING"
    assert tasks["audio"].completed == 100
    assert tasks["merge.mux-v1"].fields["status"] == "FAILED ffmpeg_failed: the tool failed"
