"""``tapedeck``: operator commands, one module per command group (``keys``, ``clips``).

Settings and adapters are built when a command runs, never at import; each command
imports only what it uses, so ``keys`` does not load the Kafka or S3 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Sequence

from services.cli import clips, keys


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    code = asyncio.run(args.command(args))
    if code:
        raise SystemExit(code)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tapedeck", description="Tapedeck operator commands.")
    groups = root.add_subparsers(dest="group", required=True)
    keys.add_commands(groups)
    clips.add_commands(groups)
    return root
