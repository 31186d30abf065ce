"""What the contract servers share: serving an ASGI app on a free local port, recording
every request, scripted faults per operation, small real audio, and a fake clock.

A contract server speaks one provider's documented HTTP contract (see
``/work/shared/reference/providers.md``); tests set a scenario, run the real client
against it, then assert what was sent (``app.requests``) and what came out.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import math
import shutil
import socket
import struct
import subprocess
import threading
import wave
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Recorded:
    op: str  # the contract's name for the call: submit, status, result, file, cancel...
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    json: Any  # the JSON body, or None


@dataclass
class Fault:
    """What the next call to an operation gets instead of the normal answer: a status with
    a body and headers, or (``status`` None) the normal answer after ``delay_s``."""

    status: int | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class ContractApp:
    """Base of the three contract servers."""

    def __init__(self, *, audio: bytes, content_type: str) -> None:
        self.audio = audio
        self.content_type = content_type
        self.requests: list[Recorded] = []
        self.counts: Counter[str] = Counter()
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.generation = 0
        self.reset()
        self.app = Starlette(routes=self.routes())

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every request and scenario (one server serves a whole session). A slow
        answer still in flight from an earlier test gets a 503 instead of touching the new
        test's state."""
        self.generation += 1
        self.requests.clear()
        self.counts.clear()
        self.faults.clear()

    # -- scenarios ------------------------------------------------------------------------------

    def fail(
        self,
        op: str,
        status: int,
        json_body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        for _ in range(times):
            self.faults[op].append(Fault(status, json_body, dict(headers or {})))

    def slow(self, op: str, delay_s: float, *, times: int = 1) -> None:
        for _ in range(times):
            self.faults[op].append(Fault(delay_s=delay_s))

    def calls(self, op: str) -> list[Recorded]:
        return [r for r in self.requests if r.op == op]

    # -- serving --------------------------------------------------------------------------------

    def handle(self, op: str, answer: Handler, *, auth: Callable[[Request], bool] | None = None):
        """A route handler: records the request, applies a queued fault, checks auth, then
        answers normally."""

        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            self.requests.append(
                Recorded(
                    op,
                    request.method,
                    request.url.path,
                    dict(request.query_params),
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
            self.counts[op] += 1
            generation = self.generation
            if self.faults[op]:
                fault = self.faults[op].pop(0)
                if fault.delay_s:
                    await asyncio.sleep(fault.delay_s)
                    if self.generation != generation:
                        return Response(status_code=503)
                if fault.status is not None:
                    if fault.json is None:
                        return Response(status_code=fault.status, headers=fault.headers)
                    return JSONResponse(fault.json, fault.status, headers=fault.headers)
            if auth is not None and not auth(request):
                return self.unauthorized()
            return await answer(request)

        return endpoint

    def unauthorized(self) -> Response:
        return JSONResponse({"detail": "Unauthorized"}, 401)

    def audio_response(self) -> Response:
        return Response(self.audio, media_type=self.content_type)


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a background thread; yields
    the base URL (no trailing slash)."""
    # proto=IPPROTO_TCP: asyncio turns Nagle off only on sockets that say they are TCP;
    # without it every answer written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"contract-{port}"
    )
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            if not thread.is_alive():
                raise RuntimeError("the contract server did not start")
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("the contract server did not start within 5 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 5)
        sock.close()


# -- audio ------------------------------------------------------------------------------------


@functools.cache
def tiny_wav(seconds: float = 0.25, rate: int = 44100) -> bytes:
    """A real WAV: a 440 Hz tone, mono 16-bit."""
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


@functools.cache
def tiny_mp3() -> bytes:
    """A real MP3 made by ffmpeg from ``tiny_wav`` (once per session); without ffmpeg, an
    MPEG audio frame header followed by silence would not decode, so the WAV stands in."""
    if shutil.which("ffmpeg") is None:  # pragma: no cover - ffmpeg is part of the stack
        return tiny_wav()
    done = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-f",
            "wav",
            "-i",
            "pipe:0",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-f",
            "mp3",
            "pipe:1",
        ],
        input=tiny_wav(),
        capture_output=True,
        check=True,
        timeout=30,
    )
    return done.stdout


# -- time -------------------------------------------------------------------------------------


class FakeTime:
    """An injectable clock and sleep: sleeping advances the clock at once and is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)
