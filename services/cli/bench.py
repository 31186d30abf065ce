"""``tapedeck bench``: the benchmark suite on the local stack (``make bench``), through the
checkout's own ``bench`` package; a ``tapedeck`` installed from a package has none."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from services.cli.args import CliError
from services.cli.stack import package_root

if TYPE_CHECKING:
    from services.cli.args import Subcommands

RUNNER = Path("bench") / "run.py"


def add_commands(groups: Subcommands) -> None:
    bench = groups.add_parser(
        "bench",
        help="run the benchmarks on the local stack and print one table",
        description="Run the benchmark suite (every figure beside its baseline, measured "
        "in the same run); results also go to bench/results/latest.json and .md. Speed "
        "never fails it; a benchmark that breaks does.",
    )
    bench.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="GROUP",
        help="run only these groups (repeat or comma-separate): clip, api, stage, merge, "
        "e2e, memory, capacity",
    )
    bench.add_argument("--smoke", action="store_true", help="tiny inputs, 1-2 repetitions")
    bench.set_defaults(command=run_command)


def find_checkout(root: Path) -> Path:
    if not (root / RUNNER).is_file():
        raise CliError(
            "tapedeck bench needs a source checkout of Tapedeck, and this tapedeck is not "
            "installed from one (no bench/ beside its code); run `make bench` in a "
            "checkout, or install one with: pip install -e <checkout>"
        )
    return root


async def run_command(args: argparse.Namespace) -> int:
    root = find_checkout(package_root())
    argv = [f"--only={group}" for group in args.only]
    if args.smoke:
        argv.append("--smoke")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.run", *argv, cwd=root)
    return await proc.wait()
