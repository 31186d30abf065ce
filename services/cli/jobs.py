"""``tapedeck jobs``: list, show, watch, retry and cancel jobs through the API: the
tenant's own (``/v1/jobs``, a tenant key) or, with ``--ops``, every tenant's
(``/v1/ops/jobs``, an operator key)."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from services.cli.api import add_api_options
from services.cli.args import USAGE, CliError, json_option, positive

if TYPE_CHECKING:
    from services.cli.api import Api
    from services.cli.args import Subcommands

STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
KINDS = ("audio", "clip", "merge", "production")
_AGO = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def instant(text: str, now: datetime | None = None) -> str:
    """An RFC 3339 time for the API from ``2025-01-02T03:04:05Z``, ``2025-01-02`` or an
    age (``30m``, ``6h``, ``2d``, ``1w``: that long ago)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        delta = timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        return ((now or datetime.now(UTC)) - delta).isoformat().replace("+00:00", "Z")
    try:
        parsed = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (RFC 3339, a date, or an age such as 30m, 6h, 2d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _upper_choice(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> str:
        if text.upper() not in choices:
            raise argparse.ArgumentTypeError(f"one of {', '.join(choices)}")
        return text.upper()

    return parse


def add_commands(groups: Subcommands) -> None:
    from services.cli.follow import add_follow_options

    jobs = groups.add_parser(
        "jobs", help="jobs through the API (--ops: every tenant's, with an operator key)"
    ).add_subparsers(dest="action", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        parser = jobs.add_parser(name, help=help)
        parser.add_argument("--ops", action="store_true", help="the operator API, across tenants")
        json_option(parser)
        add_api_options(parser)
        return parser

    listing = command("list", "list jobs, newest first")
    listing.add_argument("--status", type=_upper_choice(STATUSES), help="|".join(STATUSES))
    listing.add_argument("--kind", choices=KINDS)
    listing.add_argument("--tenant", help="one tenant's jobs (with --ops)")
    listing.add_argument("--created-after", type=instant, metavar="TIME")
    listing.add_argument("--created-before", type=instant, metavar="TIME")
    listing.add_argument("--limit", type=positive(int), default=50)
    listing.add_argument("--cursor", help="the next page, as the last listing said")
    listing.set_defaults(command=list_command)

    show = command("show", "one job: status, stages, outputs, timeline")
    show.add_argument("job_id")
    show.set_defaults(command=show_command)

    watch = command("watch", "follow a job until it ends (exit 0 only if it completed)")
    watch.add_argument("job_id")
    add_follow_options(watch)
    watch.set_defaults(command=watch_command)

    retry = command("retry", "run a stage again (the tenant API retries the audio)")
    retry.add_argument("job_id")
    retry.add_argument("--stage", default="audio", help="the stage to retry (default audio)")
    retry.set_defaults(command=retry_command)

    cancel = command("cancel", "stop a job; it ends CANCELLED")
    cancel.add_argument("job_id")
    cancel.set_defaults(command=cancel_command)


def jobs_path(args: argparse.Namespace, job_id: str | None = None, action: str = "") -> str:
    path = "/v1/ops/jobs" if args.ops else "/v1/jobs"
    if job_id is not None:
        # Ids are plain ids; quoted anyway so a typo cannot reach another route.
        path += "/" + quote(job_id, safe="")
    return path + (f"/{action}" if action else "")


def _api(args: argparse.Namespace) -> Api:
    from services.cli.api import Api

    return Api.from_args(args)


async def list_command(args: argparse.Namespace) -> int:
    from services.cli.job_view import list_table
    from services.cli.output import console, print_json

    if args.tenant and not args.ops:
        raise CliError("--tenant needs --ops (a tenant key sees only its own jobs)", USAGE)
    params = {
        "status": args.status,
        "kind": args.kind,
        "tenant": args.tenant,
        "created_after": args.created_after,
        "created_before": args.created_before,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    async with _api(args) as api:
        page = await api.get(jobs_path(args), params)
    if args.json:
        print_json(page)
        return 0
    jobs = page.get("jobs") or []
    if jobs:
        console().print(list_table(jobs, tenants=args.ops))
    else:
        print("no jobs", file=sys.stderr)
    if page.get("next_cursor"):
        print(f"more: --cursor {page['next_cursor']}", file=sys.stderr)
    return 0


async def show_command(args: argparse.Namespace) -> int:
    async with _api(args) as api:
        job = await api.get(jobs_path(args, args.job_id))
    _print_job(job, args.json)
    return 0


async def watch_command(args: argparse.Namespace) -> int:
    from services.cli.follow import follow
    from services.cli.submit import report_end

    async with _api(args) as api:

        async def fetch() -> Any:
            return await api.get(jobs_path(args, args.job_id))

        job = await follow(
            fetch,
            args.job_id,
            interval_s=args.interval,
            timeout_s=args.wait_timeout,
            show=not args.json,
        )
    return report_end(job, as_json=args.json)


async def retry_command(args: argparse.Namespace) -> int:
    async with _api(args) as api:
        job = await api.post(jobs_path(args, args.job_id, "retry"), params={"stage": args.stage})
    if not args.json:
        print(f"retrying stage {args.stage} of job {args.job_id}", file=sys.stderr)
    _print_job(job, args.json)
    return 0


async def cancel_command(args: argparse.Namespace) -> int:
    async with _api(args) as api:
        job = await api.post(jobs_path(args, args.job_id, "cancel"))
    if not args.json:
        print(f"job {args.job_id} is {job.get('status')}", file=sys.stderr)
    _print_job(job, args.json)
    return 0


def _print_job(job: Any, as_json: bool) -> None:
    from services.cli.job_view import detail
    from services.cli.output import console, print_json

    if as_json:
        print_json(job)
        return
    out = console()
    for part in detail(job):
        out.print(part)
