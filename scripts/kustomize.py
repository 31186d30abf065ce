"""kustomize, built once through the Go module proxy into the stack's cache, then run.

Usage: scripts/kustomize.py [kustomize arguments]   e.g. build deploy/k8s/overlays/prod

The binary lands in ``$TAPEDECK_CACHE/kustomize-<version>/kustomize`` (default
``~/.cache/tapedeck``, the cache scripts/stack.py builds its servers into). The first call
takes a minute or two (``go install``); later ones start at once. ``kustomize_bin()`` is
what the deploy tests call: a failed build raises ``stack.StackError`` with go's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack

KUSTOMIZE_VERSION = "v5.8.0"
MODULE = "sigs.k8s.io/kustomize/kustomize/v5"


def kustomize_bin() -> Path:
    return stack.go_tool("kustomize", MODULE, KUSTOMIZE_VERSION)


def build(path: Path | str) -> str:
    """``kustomize build PATH``: the rendered YAML, or StackError with kustomize's message."""
    proc = subprocess.run(
        [str(kustomize_bin()), "build", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise stack.StackError(f"kustomize build {path} failed:\n{proc.stderr}")
    return proc.stdout


def main(argv: list[str]) -> int:
    try:
        binary = kustomize_bin()
    except stack.StackError as exc:
        print(f"[kustomize] error: {exc}", file=sys.stderr)
        return 1
    return subprocess.run([str(binary), *argv]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
