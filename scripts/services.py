"""Run Tapedeck's own services in the background against the local stack.

Usage: scripts/services start | stop | status

Each service is a separate process (as in production) with its log under
``$STACK_DIR/logs`` and its pid file under ``$STACK_DIR/run``.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stack

API = f"http://{os.environ.get('API_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8080')}"
PY = sys.executable


def _healthz() -> None:
    with urllib.request.urlopen(f"{API}/readyz", timeout=2) as resp:
        if resp.status != 200:
            raise RuntimeError(f"healthz answered {resp.status}")


def _service(
    name: str,
    module: str,
    probe: Callable[[], None] | None = None,
    web: tuple[str, int] | None = None,
) -> stack.Service:
    svc = stack.Service(
        name=name,
        port=0,
        install=lambda: None,
        argv=lambda: [PY, "-m", module],
        probe=lambda: None,
    )
    if web is not None:
        # The worker's /metrics, /healthz and /readyz, unless the caller chose a port.
        setting, default = web
        port = int(os.environ.get(setting) or default)
        svc.env[setting] = str(port)
        svc.probe = probe or (lambda: _ready(f"http://127.0.0.1:{port}/readyz"))
    else:
        svc.probe = probe or (lambda: _alive(svc))
    return svc


def _ready(url: str) -> None:
    with urllib.request.urlopen(url, timeout=2) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}")


def _alive(svc: stack.Service) -> None:
    if not svc.pid():
        raise RuntimeError(f"{svc.name} is not running")


CLIPPER = _service("clipper", "services.clipper", web=("CLIPPER_WEB_PORT", 6071))
AUDIO_AGENT = _service("audio-agent", "services.audio_agent", web=("AUDIO_WEB_PORT", 6072))
MERGER = _service("merger", "services.merger", web=("MERGER_WEB_PORT", 6073))
SUBMITTER = _service("submitter", "services.submitter", _healthz)
WEBHOOKS = _service("webhooks", "services.webhooks", web=("WEBHOOK_WEB_PORT", 6075))
LIFECYCLE = _service("lifecycle", "services.lifecycle", web=("LIFECYCLE_WEB_PORT", 6074))
SERVICES = [CLIPPER, AUDIO_AGENT, MERGER, LIFECYCLE, SUBMITTER, WEBHOOKS]


def start() -> None:
    for svc in SERVICES:
        stack.start(svc)
    for svc in SERVICES:
        stack.wait_ready(svc, timeout_s=60)
    stack.log(f"services ready; API at {API}")


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "status"
    try:
        if cmd == "start":
            start()
        elif cmd == "stop":
            for svc in reversed(SERVICES):
                stack.stop(svc)
        elif cmd == "status":
            for svc in SERVICES:
                state = "ready" if svc.healthy() else "down"
                print(f"{svc.name:11} pid={svc.pid() or '-':<8} {state}")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (stack.StackError, RuntimeError) as exc:
        print(f"[services] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
