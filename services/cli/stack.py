"""``tapedeck stack up|down|status``: the local stack (Kafka, MongoDB, S3), through the
checkout's own ``scripts/stack``; a ``tapedeck`` installed from a package has none."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.cli.args import FAILED, CliError, json_option

if TYPE_CHECKING:
    from services.cli.args import Subcommands

SCRIPT = Path("scripts") / "stack"
# One line of ``scripts/stack status``: "kafka  127.0.0.1:9092   pid=1234     ready".
_STATUS_LINE = re.compile(r"(\S+)\s+(\S+:\d+)\s+pid=(\S+)\s+(.+)")


def add_commands(groups: Subcommands) -> None:
    stack = groups.add_parser(
        "stack", help="the local stack (Kafka, MongoDB, S3) of a source checkout"
    ).add_subparsers(dest="action", required=True)
    stack.add_parser("up", help="start it (idempotent), wait until it answers").set_defaults(
        command=run_command
    )
    stack.add_parser("down", help="stop what it started").set_defaults(command=run_command)
    status = stack.add_parser("status", help="each server's state (exit 1 unless all ready)")
    json_option(status)
    status.set_defaults(command=run_command)


def package_root() -> Path:
    # services/cli/stack.py -> the directory holding ``services``: a checkout's root when
    # installed editable (or run from the tree), site-packages when installed from a wheel.
    return Path(__file__).resolve().parents[2]


def find_checkout(root: Path) -> Path:
    script = root / SCRIPT
    if not (script.is_file() and (root / "pyproject.toml").is_file()):
        raise CliError(
            "tapedeck stack needs a source checkout of Tapedeck, and this tapedeck is not "
            "installed from one (no scripts/stack beside its code); run scripts/stack in a "
            "checkout, or install one with: pip install -e <checkout>"
        )
    return script


async def run_command(args: argparse.Namespace) -> int:
    script = find_checkout(package_root())
    as_json = args.action == "status" and args.json
    proc = await asyncio.create_subprocess_exec(
        str(script),
        args.action,
        cwd=script.parent.parent,
        stdout=asyncio.subprocess.PIPE if as_json else None,
    )
    out, _ = await proc.communicate()
    code = proc.returncode or 0
    if as_json:
        from services.cli.output import print_json

        print_json(parse_status(out.decode(errors="replace")))
    if code and args.action == "status":
        print("tapedeck: the stack is not (all) ready", file=sys.stderr)
        return FAILED
    if code:
        print(f"tapedeck: stack {args.action} failed (exit {code})", file=sys.stderr)
    return code


def parse_status(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        match = _STATUS_LINE.fullmatch(line.strip())
        if not match:
            continue
        name, endpoint, pid, state = match.groups()
        rows.append(
            {
                "name": name,
                "endpoint": endpoint,
                "pid": int(pid) if pid.isdigit() else None,
                "state": state.strip(),
                "ready": state.strip() == "ready",
            }
        )
    return rows
