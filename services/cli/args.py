"""Argument types and the error exit shared by every command group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    # What ``add_subparsers`` returns (generic only in the stubs): each command group
    # module adds its commands to it.
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

# Exit statuses scripts can tell apart: a failure (an API error, a job that failed, a
# refused event), and a usage error (argparse's own status, for bad input files too).
FAILED = 1
USAGE = 2


class CliError(Exception):
    """Ends a command with one line on stderr (``tapedeck: <message>``) and ``code``."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line like every other failure (subcommands'
    parsers are made of the same class)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("tapedeck").strip()
        prefix = f"{where}: " if where else ""
        self.exit(USAGE, f"tapedeck: {prefix}{message} (see: {self.prog} --help)\n")


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return value

    return parse


def fail(message: str, code: int = FAILED) -> int:
    print(f"tapedeck: {message}", file=sys.stderr)
    return code


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")


def read_input(path: str, what: str = "file") -> bytes:
    """The bytes of ``path`` (``-`` for stdin); a missing or unreadable file is a usage
    error naming the path the user gave, nothing more."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CliError(f"{what} {path!r} does not exist", USAGE) from None
    except IsADirectoryError:
        raise CliError(f"{what} {path!r} is a directory", USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot read {what} {path!r}: {exc.strerror or 'error'}", USAGE) from None
