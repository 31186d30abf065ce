"""Argument types and the error exit shared by every command group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # What ``add_subparsers`` returns (generic only in the stubs): each command group
    # module adds its commands to it.
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


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


def fail(message: str, code: int = 1) -> int:
    print(f"tapedeck: {message}", file=sys.stderr)
    return code
