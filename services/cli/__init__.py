"""``tapedeck``: operator commands, one module per command group (``keys``, ``clips``,
``submit``, ``jobs``, ``dlq``, ``produce``, ``topics``, ``stack``).

Settings and adapters are built when a command runs, never at import; each command
imports only what it uses, so ``keys`` does not load the Kafka or S3 clients.

Every failure ends with one line on stderr, ``tapedeck: <what went wrong>``, and a
non-zero status; tracebacks only with ``TAPEDECK_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from services.cli import bench, clips, dlq, jobs, keys, produce, stack, submit, topics
from services.cli.args import CliError, Parser, fail
from services.cli.failures import describe

DEBUG_ENV = "TAPEDECK_DEBUG"


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    level = logging.DEBUG if debug else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        # The Kafka client warns about what it retries and recovers from (a new topic's
        # leader not elected yet); a failure still ends the command with its own line.
        logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        code = asyncio.run(run(args, debug=debug))
    except KeyboardInterrupt:
        code = fail("interrupted", 130)
    if code:
        raise SystemExit(code)


async def run(args: argparse.Namespace, *, debug: bool = False) -> int:
    """The parsed command; its exit status, any failure told in one line on stderr."""
    try:
        code: int = await args.command(args)
    except CliError as exc:
        return fail(exc.message, exc.code)
    except Exception as exc:
        if debug:
            raise
        return fail(describe(exc))
    except asyncio.CancelledError as exc:
        # Nobody cancelled this command (Ctrl-C is KeyboardInterrupt): a client library
        # let a cancellation of its own escape, which is a failure like any other.
        task = asyncio.current_task()
        if debug or (task is not None and task.cancelling()):
            raise
        return fail(describe(exc))
    return code


def parser() -> argparse.ArgumentParser:
    root: argparse.ArgumentParser = Parser(
        prog="tapedeck", description="Tapedeck operator commands."
    )
    groups = root.add_subparsers(dest="group", required=True)
    submit.add_commands(groups)
    jobs.add_commands(groups)
    dlq.add_commands(groups)
    produce.add_commands(groups)
    topics.add_commands(groups)
    keys.add_commands(groups)
    clips.add_commands(groups)
    stack.add_commands(groups)
    bench.add_commands(groups)
    return root


if __name__ == "__main__":  # pragma: no cover - ``python -m services.cli``
    main(sys.argv[1:])
