"""Toxiproxy (a TCP proxy whose faults are set over an HTTP API), built once through the
Go module proxy into the stack's cache, for the reliability tests.

Usage: scripts/toxiproxy.py [toxiproxy-server arguments]
  e.g. -host 127.0.0.1 -port 8474

The binary lands in ``$TAPEDECK_CACHE/toxiproxy-<version>/toxiproxy-server`` (default
``~/.cache/tapedeck``, beside the servers scripts/stack.py builds); the first build takes
about a minute on two cores, later calls start at once. ``toxiproxy_bin()`` is what the
tests call: a failed build raises ``stack.StackError`` with go's output. Nothing here is
part of the local stack: the tests start the server on a loopback port of their own and
put it between the services and Kafka, MongoDB and S3.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack

TOXIPROXY_VERSION = "v2.12.0"
MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"


def toxiproxy_bin() -> Path:
    return stack.go_tool("toxiproxy-server", MODULE, TOXIPROXY_VERSION, built_as="server")


def main(argv: list[str]) -> int:
    try:
        binary = toxiproxy_bin()
    except stack.StackError as exc:
        print(f"[toxiproxy] error: {exc}", file=sys.stderr)
        return 1
    os.execv(binary, [str(binary), *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
