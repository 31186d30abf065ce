"""Service processes for the benchmarks: started like production (settings through the
environment only), watched through ``/proc`` and their ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the environment variables a service reads them from."""
    env: dict[str, str] = {}
    for name, spec in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None or spec.alias is None:
            continue
        env[spec.alias] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    module: str
    proc: subprocess.Popen[bytes]
    log: Path
    web_port: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"


def start(
    module: str, settings: Settings, logdir: Path, *, name: str | None = None,
    web_port_var: str | None = None, env: Mapping[str, str] | None = None,
) -> Service:  # fmt: skip
    """``python -m module`` with ``settings`` (and ``env``) in its environment; its
    output goes to ``logdir/<name>.log``. With ``web_port_var`` it gets a free port for
    ``/metrics`` and ``/readyz``."""
    extra = dict(env or {})
    port = None
    if web_port_var:
        port = free_port()
        extra[web_port_var] = str(port)
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name or module}.log"
    full_env = {**os.environ, **settings_env(settings), **extra}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", module], env=full_env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    return Service(module, proc, log, port, extra)


def stop(service: Service, timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; reaped either way."""
    proc = service.proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


@contextlib.contextmanager
def stopping(services: list[Service]) -> Iterator[list[Service]]:
    try:
        yield services
    finally:
        for s in services:
            if s.proc.poll() is None:
                s.proc.terminate()
        for s in services:
            stop(s)


async def wait_ready(url: str, services: list[Service], timeout_s: float = 90) -> None:
    """Until ``url`` answers 200; fails at once if one of ``services`` exits."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=3) as client:
        while True:
            for s in services:
                if s.proc.poll() is not None:
                    raise RuntimeError(f"{s.module} exited with {s.proc.returncode}; see {s.log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready in {timeout_s:.0f} s")
            await asyncio.sleep(0.3)


# -- /proc ----------------------------------------------------------------------------------


def status_kb(pid: int, key: str) -> int | None:
    """A ``/proc/<pid>/status`` field in kB (``VmRSS``, ``VmHWM``), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (ffmpeg runs of a worker)."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        out: list[int] = []
        for task in tasks:
            with contextlib.suppress(OSError):
                out += [int(c) for c in (task / "children").read_text().split()]
        return out
    except OSError:
        return []


class RssSampler:
    """Samples a process's resident size (and its children's) every ``every_s`` seconds
    while the ``async with`` body runs."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        self.pid = pid
        self.every_s = every_s
        self.samples_kb: list[int] = []
        self.child_peak_kb = 0
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            rss = status_kb(self.pid, "VmRSS")
            if rss is not None:
                self.samples_kb.append(rss)
            for child in children(self.pid):
                peak = status_kb(child, "VmHWM") or 0
                self.child_peak_kb = max(self.child_peak_kb, peak)
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def peak_kb(self) -> int:
        return max(self.samples_kb, default=0)


# -- /metrics -------------------------------------------------------------------------------


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """``{(name, labels): value}`` of a Prometheus text exposition."""
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line.strip())
        if match:
            with contextlib.suppress(ValueError):
                out[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return out


def metric_sum(samples: Mapping[tuple[str, str], float], name: str, **labels: str) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    total = 0.0
    for (n, lab), value in samples.items():
        if n != name:
            continue
        if all(f'{k}="{v}"' in lab for k, v in labels.items()):
            total += value
    return total


async def scrape(client: httpx.AsyncClient, service: Service) -> dict[tuple[str, str], float]:
    resp = await client.get(service.url("/metrics"))
    resp.raise_for_status()
    return parse_metrics(resp.text)
