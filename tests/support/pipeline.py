"""Tapedeck's service processes for the reliability tests: started, killed, stopped and
restarted one by one, each with its health port, all sharing one private ``TMPDIR``.

Every process started here (and every child it runs) carries that ``TMPDIR`` in its
environment, so :meth:`Pipeline.strays` finds whatever outlived its service, however it
was reparented, and :meth:`Pipeline.temp_files` whatever it left on disk.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.common.settings import Settings
from tests.support.services import ROOT, free_port, settings_env

# The environment variable that names each worker's health port, and its module.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For ``Popen(preexec_fn=...)``: the child gets SIGKILL when the test process dies, so
    a test run killed outright leaves no service, broker or proxy running behind it."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


WEB_PORT = {
    "services.clipper": "CLIPPER_WEB_PORT",
    "services.audio_agent": "AUDIO_WEB_PORT",
    "services.merger": "MERGER_WEB_PORT",
    "services.lifecycle": "LIFECYCLE_WEB_PORT",
    "services.webhooks": "WEBHOOK_WEB_PORT",
    "services.submitter": "API_PORT",
}


@dataclass
class Worker:
    name: str
    module: str
    port: int
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None


class Pipeline:
    def __init__(self, settings: Settings, home: Path, **env: str) -> None:
        self.settings = settings
        self.home = home
        self.tmpdir = home / "tmp"
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            **settings_env(settings),
            "TMPDIR": str(self.tmpdir),
            "FAUST_DATA_DIR": str(home / "faust"),
            "LOG_FORMAT": "text",
            **env,
        }
        self.workers: dict[str, Worker] = {}
        self._count: dict[str, int] = {}
        self._stopped: set[str] = set()  # stopped or killed on purpose

    # -- processes ------------------------------------------------------------------------------

    def start(self, module: str, name: str | None = None, **extra: str) -> Worker:
        """Start ``module`` as ``name`` (default: its short name and a number). A name that
        ran before keeps its port and log, as a restarted pod keeps its address."""
        if name is None:
            short = module.rsplit(".", 1)[-1]
            self._count[short] = self._count.get(short, 0) + 1
            name = f"{short}-{self._count[short]}"
        old = self.workers.get(name)
        if old is not None and old.alive():
            raise RuntimeError(f"{name} is still running")
        port = old.port if old is not None else free_port()
        # Its name is its WORKER_ID, as a pod's name would be: restarted, it rejoins its
        # consumer group as the same (static) member.
        env = {**self.env, WEB_PORT[module]: str(port), "WORKER_ID": name, **extra}
        log = self.home / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    preexec_fn=die_with_parent)  # fmt: skip
        worker = Worker(name, module, port, log, extra, proc)
        self.workers[name] = worker
        self._stopped.discard(name)
        return worker

    def restart(self, worker: Worker) -> Worker:
        return self.start(worker.module, worker.name, **worker.env)

    def kill(self, worker: Worker) -> None:
        """``kill -9``, reaped (an unreaped pid would still count as alive)."""
        self._stopped.add(worker.name)
        if worker.alive():
            os.kill(worker.pid, signal.SIGKILL)
        worker.proc.wait()

    def terminate(self, worker: Worker, timeout_s: float = 30) -> int:
        """SIGTERM; returns the exit code; fails if it does not exit within ``timeout_s``."""
        self._stopped.add(worker.name)
        if worker.alive():
            worker.proc.terminate()
        try:
            return worker.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
            raise AssertionError(
                f"{worker.name} did not stop within {timeout_s:g} s of SIGTERM"
            ) from None

    def stop_all(self) -> None:
        live = [w for w in self.workers.values() if w.alive()]
        for w in live:
            w.proc.terminate()
        for w in live:
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()

    def dead(self) -> list[str]:
        """Workers that exited though nobody stopped them."""
        return [w.name for w in self.workers.values()
                if not w.alive() and w.name not in self._stopped]  # fmt: skip

    def tail(self, worker: Worker, chars: int = 4000) -> str:
        try:
            return worker.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- health -------------------------------------------------------------------------------

    async def readyz(self, worker: Worker) -> tuple[int, dict[str, Any]]:
        """The worker's ``/readyz``: (status code, body); (0, {}) when it does not answer."""
        try:
            async with httpx.AsyncClient(timeout=15) as client:
                resp = await client.get(f"{worker.url}/readyz")
            return resp.status_code, dict(resp.json())
        except (httpx.HTTPError, ValueError):
            return 0, {}

    async def ready(self, *workers: Worker, timeout_s: float = 90) -> None:
        """Until every worker's ``/readyz`` answers 200 (by default, every worker not
        stopped on purpose)."""
        pending = list(workers) or [w for w in self.workers.values() if w.name not in self._stopped]
        deadline = time.monotonic() + timeout_s
        while pending:
            for w in list(pending):
                if not w.alive():
                    raise AssertionError(f"{w.name} exited ({w.proc.returncode}):\n{self.tail(w)}")
                if (await self.readyz(w))[0] == 200:
                    pending.remove(w)
            if pending and time.monotonic() > deadline:
                names = ", ".join(w.name for w in pending)
                raise AssertionError(f"not ready in {timeout_s:g} s: {names}")
            if pending:
                await asyncio.sleep(0.3)

    # -- leftovers ------------------------------------------------------------------------------

    def strays(self, exclude: Iterable[int] = ()) -> list[tuple[int, str]]:
        """Live processes (not zombies) started here or by what was started here, other
        than ``exclude``: (pid, command line)."""
        marker = f"TMPDIR={self.tmpdir}".encode()
        skip = {os.getpid(), *exclude}
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in skip:
                continue
            try:
                environ = Path(f"/proc/{name}/environ").read_bytes()
                state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if state != "Z" and marker in environ.split(b"\0"):
                out.append((int(name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
        return out

    def children(self, worker: Worker, program: str = "ffmpeg") -> list[int]:
        """Live child processes of ``worker`` running ``program``."""
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                argv0 = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if (int(fields[1]) == worker.pid and fields[0] != "Z"
                    and Path(argv0.decode(errors="replace")).name == program):  # fmt: skip
                out.append(int(name))
        return out

    def running_pids(self) -> set[int]:
        return {w.pid for w in self.workers.values() if w.alive()}

    def temp_files(self) -> list[Path]:
        return sorted(self.tmpdir.rglob("*"))


async def until(check: Callable[[], Any], timeout_s: float, what: str, step_s: float = 0.2) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail naming
    ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(step_s)
