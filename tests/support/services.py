"""Run the real service processes for end-to-end tests, configured like production:
through environment variables only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from pydantic import SecretStr

from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None or field.alias is None:
            continue
        env[field.alias] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(
    module: str, settings: Settings, log: Path, **extra: str
) -> subprocess.Popen[bytes]:
    """Start one service (``python -m module``) configured like production: the test's
    settings as environment variables, plus ``extra`` (e.g. ``TMPDIR``). Its output goes
    to ``log``. Nothing waits for it to be ready; stop it with :func:`stop_service`."""
    env = {**os.environ, **settings_env(settings), **extra}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def stop_service(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; the process is reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


@contextmanager
def running(
    settings: Settings,
    logdir: Path,
    modules: tuple[str, ...] = ("services.clipper", "services.submitter"),
    **extra: str,
) -> Iterator[str]:
    """Start ``modules`` (the submitter among them), each as its own process; yield the API
    base URL once it answers; stop them all afterwards."""
    port = free_port()
    env = {**os.environ, **settings_env(settings), "API_PORT": str(port), **extra}
    procs = []
    try:
        for n, module in enumerate(modules):
            log = (logdir / f"{module}.{n}.log").open("wb")
            procs.append(subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                                          stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a service exited early; logs in {logdir}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"services not ready in 60 s; logs in {logdir}")
            time.sleep(0.3)
        yield base
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
