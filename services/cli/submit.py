"""``tapedeck submit JOB.json``: submit a job (``POST /v1/jobs``) and follow it to its end
with a progress bar per stage; the status says how it ended (0: completed)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from services.cli.api import add_api_options
from services.cli.args import USAGE, CliError, json_option, read_input

if TYPE_CHECKING:
    from services.cli.args import Subcommands


def add_commands(groups: Subcommands) -> None:
    from services.cli.follow import add_follow_options

    submit = groups.add_parser(
        "submit",
        help="submit a job and follow it until it ends",
        description="Submit a job (POST /v1/jobs) from a JSON file ('-' for stdin) and show "
        "its progress until it ends. Exit status: 0 completed, 1 failed or cancelled "
        "(or any error), 2 a bad file or usage.",
    )
    submit.add_argument("file", metavar="JOB.json", help="the job spec, as POST /v1/jobs takes")
    submit.add_argument(
        "--no-wait", action="store_true", help="print the job id and return at once"
    )
    submit.add_argument("--idempotency-key", metavar="K", help="the Idempotency-Key header")
    add_follow_options(submit)
    json_option(submit)
    add_api_options(submit)
    submit.set_defaults(command=submit_command)


def load_spec(raw: bytes, path: str) -> dict[str, Any]:
    """The job spec in ``raw``: a JSON object; anything else is a usage error, so nothing
    goes to the API that it would only refuse for its framing."""
    try:
        spec = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise CliError(f"{path} is not valid JSON{where}", USAGE) from None
    if not isinstance(spec, dict):
        raise CliError(f"{path} must hold a JSON object (a job spec)", USAGE)
    return spec


async def submit_command(args: argparse.Namespace) -> int:
    from services.cli.api import Api
    from services.cli.follow import follow
    from services.cli.output import print_json

    spec = load_spec(read_input(args.file, "job file"), args.file)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    async with Api.from_args(args) as api:
        accepted = await api.post("/v1/jobs", json=spec, headers=headers)
        job_id = str(accepted["job_id"])
        if args.no_wait:
            if args.json:
                print_json(accepted)
            else:
                print(job_id)
                print(f"submitted job {job_id} ({accepted.get('status')})", file=sys.stderr)
            return 0
        if not args.json:
            print(f"submitted job {job_id}", file=sys.stderr)

        async def fetch() -> Any:
            return await api.get(f"/v1/jobs/{job_id}")

        job = await follow(
            fetch,
            job_id,
            interval_s=args.interval,
            timeout_s=args.wait_timeout,
            show=not args.json,
        )
    return report_end(job, as_json=args.json)


def report_end(job: Any, *, as_json: bool) -> int:
    """The job's last state on stdout; a job that did not complete also gets the
    ``tapedeck:`` line on stderr, and a failure status."""
    from services.cli.follow import end_code
    from services.cli.job_view import summary
    from services.cli.output import print_json

    code = end_code(job)
    if as_json:
        print_json(job)
    elif not code:
        print(summary(job))
    if code:
        print(f"tapedeck: {summary(job)}", file=sys.stderr)
    return code
