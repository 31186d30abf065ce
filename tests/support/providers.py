"""A scripted audio provider for the audio stage's unit tests: counts what it is asked,
fails the scenes it is told to, and writes a real short WAV as its output."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import struct
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from schemas.codes import Code
from services.audio_agent.providers.base import (
    Generated,
    GenerationRequest,
    InvalidGeneration,
    OnStatus,
    ProviderRejected,
    Ticket,
)


def write_tone(path: Path, seconds: float, hz: float = 440.0, rate: int = 8000) -> None:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / rate)))
        for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)


@dataclass
class ScriptedProvider:
    name: str = "local"
    fail_prompts: set[str] = field(default_factory=set)  # prompts whose fetch fails
    models: set[str] = field(default_factory=lambda: {"m1"})
    submits: list[GenerationRequest] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)
    # Set to make fetch wait (a slow provider) until released.
    gate: asyncio.Event | None = None
    # A fetch whose prompt holds ``hang_on`` signals ``hanging`` and waits until ``release``.
    hang_on: str | None = None
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self, request: GenerationRequest) -> None:
        if request.model not in self.models:
            raise InvalidGeneration(f"unknown model {request.model!r}", provider=self.name)

    async def submit(self, request: GenerationRequest) -> Ticket:
        self.submits.append(request)
        data = asdict(request)
        rid = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        return Ticket(self.name, f"req-{len(self.submits)}-{rid[:8]}", data)

    async def fetch(
        self, ticket: Ticket, dest: Path, *, deadline_s: float, on_status: OnStatus = None
    ) -> Generated:
        self.fetches.append(ticket.request_id)
        if on_status is not None:
            await on_status("queued", 1)
        if self.gate is not None:
            await self.gate.wait()
        prompt = str(ticket.data["prompt"])
        if self.hang_on is not None and self.hang_on in prompt:
            self.hanging.set()
            await self.release.wait()
        if any(bad in prompt for bad in self.fail_prompts):
            raise ProviderRejected(
                "generation failed", provider=self.name, provider_message="GPU on fire",
                code=Code.PROVIDER_FAILED,
            )  # fmt: skip
        # Shorter than asked, as real providers often are: the stage pads it.
        await asyncio.to_thread(write_tone, dest, max(0.2, float(ticket.data["duration_s"]) - 0.3))
        state: dict[str, Any] = {"after": ticket.request_id}
        return Generated(dest, "audio/wav", state)

    async def cancel(self, ticket: Ticket) -> None:
        return None


class MemoryGenerationCache:
    def __init__(self) -> None:
        self.entries: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self.entries.get(key)

    async def put(self, key: str, entry: Any) -> None:
        self.entries[key] = entry
