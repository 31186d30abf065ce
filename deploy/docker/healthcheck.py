"""Health check of a Tapedeck container: the image's HEALTHCHECK, compose's health checks
and the Kubernetes exec probes of the workers all run this.

Usage: python /app/deploy/docker/healthcheck.py [MODULE] [--ready]

MODULE (``services.clipper``, ...) defaults to the module the container's main process
runs (``python -m MODULE``, read from /proc/1/cmdline). Exit 0 healthy, 1 not.

- ``services.submitter``: ``GET /readyz`` on ``API_PORT``: 200 once MongoDB, Kafka (the
  results listener) and S3 answer.
- the Faust workers: on the worker's web port setting (``CLIPPER_WEB_PORT``, ...),
  ``GET /healthz`` (liveness and start-up: the event loop runs and the consumer has not
  stalled, which a restart cures) or, with ``--ready``, ``GET /readyz`` (MongoDB, Kafka
  and S3 answer too). The server listens on ``WEB_BIND`` (127.0.0.1 unless Prometheus
  scrapes the pod), so probes run inside the container. A worker started without its
  web port setting has nothing to ask: then only the process is checked.
- anything else (``services.topics``): healthy while it runs.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

SUBMITTER = "services.submitter"
WEB_PORT = {
    "services.clipper": "CLIPPER_WEB_PORT",
    "services.audio_agent": "AUDIO_WEB_PORT",
    "services.merger": "MERGER_WEB_PORT",
    "services.lifecycle": "LIFECYCLE_WEB_PORT",
    "services.webhooks": "WEBHOOK_WEB_PORT",
}
TIMEOUT_S = float(os.environ.get("HEALTHCHECK_TIMEOUT_S", "4"))


def main_module(cmdline_path: str = "/proc/1/cmdline") -> str | None:
    try:
        with open(cmdline_path, "rb") as fh:
            argv = [a.decode() for a in fh.read().split(b"\0") if a]
    except OSError:
        return None
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m":
            return argv[i + 1]
    return None


def url_for(module: str | None, environ: dict[str, str], *, ready: bool = False) -> str | None:
    if module == SUBMITTER:
        return f"http://127.0.0.1:{environ.get('API_PORT') or '8080'}/readyz"
    port = environ.get(WEB_PORT.get(module or "", ""), "")
    path = "/readyz" if ready else "/healthz"
    return f"http://127.0.0.1:{port}{path}" if port else None


def check(url: str) -> str | None:
    """None when ``url`` answers 2xx in time, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def main(argv: list[str]) -> int:
    ready = "--ready" in argv
    args = [a for a in argv if a != "--ready"]
    module = args[0] if args else main_module()
    url = url_for(module, dict(os.environ), ready=ready)
    if url is None:
        print(f"{module or 'this process'}: no health endpoint; the process runs")
        return 0
    problem = check(url)
    if problem:
        print(f"{module}: {url} -> {problem}", file=sys.stderr)
        return 1
    print(f"{module}: {url} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
