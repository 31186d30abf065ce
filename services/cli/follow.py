"""Following a job until it ends: one progress bar for the job and one per stage, kept up
to date by polling the job (``submit``, ``jobs watch``)."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from services.cli.args import FAILED, CliError, positive
from services.cli.job_view import TERMINAL, job_percent, stage_states
from services.cli.output import escape

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

Fetch = Callable[[], Awaitable[Mapping[str, Any]]]


class Bars:
    """The bars of one job: the whole first, then each stage as it appears."""

    def __init__(self, progress: Progress, job_id: str) -> None:
        self._progress = progress
        self._job = progress.add_task(f"job {escape(job_id)}", total=100, status="PENDING")
        self._stages: dict[str, TaskID] = {}

    def update(self, job: Mapping[str, Any]) -> None:
        status = str(job.get("status") or "PENDING")
        self._progress.update(self._job, completed=job_percent(job), status=status)
        for stage in stage_states(job):
            task = self._stages.get(stage.name)
            if task is None:
                task = self._progress.add_task(f"  {escape(stage.name)}", total=100, status="")
                self._stages[stage.name] = task
            label = f"{stage.status} {stage.note}".strip()
            self._progress.update(task, completed=stage.percent, status=label)


def progress_display(*, enabled: bool) -> Progress:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from services.cli.output import console

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}", markup=False),
        console=console(stderr=True),
        disable=not enabled,
    )


async def follow(
    fetch: Fetch,
    job_id: str,
    *,
    interval_s: float,
    timeout_s: float | None,
    show: bool,
) -> Mapping[str, Any]:
    """Poll until the job ends; its last answer. Past ``timeout_s`` a failure that says
    the job goes on (waiting is the command's, not the job's)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with progress_display(enabled=show) as progress:
        bars = Bars(progress, job_id)
        while True:
            job = await fetch()
            bars.update(job)
            if job.get("status") in TERMINAL:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(
                    f"job {job_id} is still {job.get('status')} after {timeout_s:g} s "
                    "(it goes on; follow it with: tapedeck jobs watch " + job_id + ")",
                    FAILED,
                )
            await asyncio.sleep(interval_s)


def add_follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", type=positive(float), default=1.0, metavar="S", help="seconds between polls"
    )
    parser.add_argument(
        "--wait-timeout",
        type=positive(float),
        default=None,
        metavar="S",
        help="give up waiting after S seconds (the job goes on); default: wait until it ends",
    )


def end_code(job: Mapping[str, Any]) -> int:
    """0 for a completed job; a failed or cancelled one is a failure for scripts."""
    return 0 if job.get("status") == "COMPLETED" else FAILED
