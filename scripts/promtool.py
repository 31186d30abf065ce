"""promtool (Prometheus's rule checker), built once through the Go module proxy into the
stack's cache, then run.

Usage: scripts/promtool.py [promtool arguments]
  e.g. check rules deploy/observability/prometheus/tapedeck.rules.yaml
       test rules deploy/observability/prometheus/tapedeck.rules.test.yaml

The binary lands in ``$TAPEDECK_CACHE/promtool-<version>/promtool`` (default
``~/.cache/tapedeck``, beside the kustomize that scripts/kustomize.py builds). The first
call takes a few minutes on two cores (``go install`` of Prometheus's module); later ones
start at once. ``promtool_bin()`` is what the deploy tests call: a failed build raises
``stack.StackError`` with go's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack

# Prometheus tags its Go module v0.MINOR.PATCH for release 3.MINOR.PATCH.
PROMTOOL_VERSION = "v0.316.0"
MODULE = "github.com/prometheus/prometheus/cmd/promtool"


def promtool_bin() -> Path:
    return stack.go_tool("promtool", MODULE, PROMTOOL_VERSION)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS``, its output captured (the caller judges the exit code)."""
    return subprocess.run([str(promtool_bin()), *map(str, args)], capture_output=True, text=True)


def main(argv: list[str]) -> int:
    try:
        binary = promtool_bin()
    except stack.StackError as exc:
        print(f"[promtool] error: {exc}", file=sys.stderr)
        return 1
    return subprocess.run([str(binary), *argv]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
