"""The one small interface every audio provider implements.

A generation is two calls, so a paid request in flight can be recorded before the agent
waits on it, and resumed after a crash instead of being paid for twice:

    ticket = await provider.submit(request)          # paid work starts here
    await ctx.save("scene-3-request", ticket.to_json())
    ...                                              # process dies, event redelivered
    ticket = Ticket.from_json(await ctx.checkpoint("scene-3-request"))
    result = await provider.fetch(ticket, dest, deadline)   # resumes polling; no new submit

Synchronous providers (ElevenLabs, local) do their work in ``fetch``; their ``submit``
only validates and returns a ticket that carries the request.

Errors: ``ProviderError`` subclasses the kit's ``TransientError`` (``retryable=True``:
429, 5xx, connection trouble, timeouts) or is raised as ``ProviderRejected``, a
``PermanentError`` (bad input, quota, a failed or aborted prediction, an expired result).
Both keep the provider's own message in ``provider_message``; keys never appear in any
message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from schemas.codes import Code
from services.common.errors import PermanentError, TransientError

Kind = Literal["music", "sfx", "voiceover"]


@dataclass(frozen=True)
class GenerationRequest:
    kind: Kind
    model: str  # the provider's model id (fal app id, Replicate model_version, ElevenLabs model_id)
    prompt: str  # as sent: after enhancement
    duration_s: float
    sample_rate: int = 44100
    format: Literal["mp3", "wav"] = "mp3"
    seed: int | None = None
    text: str | None = None  # voiceover script
    previous_text: str | None = None  # voiceover: the scenes around this one, for prosody
    next_text: str | None = None
    # Music continuation: the previous scene's audio, as a URL a remote provider can fetch
    # (Replicate's input_audio), and the local provider's musical state (key, tempo, ...).
    continuation_url: str | None = None
    continuation_state: dict[str, Any] | None = None
    # Provider-specific knobs from configuration or the job (voice_id, prompt_influence...).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Ticket:
    """A submitted generation: everything needed to resume waiting on it, JSON-safe."""

    provider: str
    request_id: str
    data: dict[str, Any] = field(default_factory=dict)  # status/response/cancel URLs, etc.

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Ticket:
        return cls(str(doc["provider"]), str(doc["request_id"]), dict(doc.get("data") or {}))


@dataclass(frozen=True)
class Generated:
    """The provider's output, written to ``path`` (its native format; the stage converts)."""

    path: Path
    content_type: str | None = None
    # Whatever the next scene needs to continue this one (local: key and tempo).
    continuation_state: dict[str, Any] | None = None


Status = Literal["queued", "running"]
# Called while waiting: position in the provider's queue (or None) and a status word.
OnStatus = Any  # Callable[[Status, int | None], Awaitable[None]] | None


class ProviderError(TransientError):
    """Worth retrying: rate limits, 5xx, connection trouble, timeouts."""

    retryable = True
    # What to record if retrying never helps (rate limited, unavailable, timed out).
    code: str = Code.PROVIDER_UNAVAILABLE

    def __init__(
        self, message: str, *, provider: str, provider_message: str = "",
        retry_after_s: float | None = None, code: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.provider = provider
        self.provider_message = provider_message
        self.retry_after_s = retry_after_s
        if code is not None:
            self.code = code


class ProviderRejected(PermanentError):
    """Not worth retrying: bad input, quota, a failed/aborted/canceled generation, an
    expired or malformed result."""

    retryable = False
    code = Code.PROVIDER_FAILED

    def __init__(
        self, message: str, *, provider: str, provider_message: str = "",
        code: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message, code=code)
        self.provider = provider
        self.provider_message = provider_message


class InvalidGeneration(ProviderRejected):
    """The request can never be served by this provider/model (checked before any call):
    an unknown model, a duration it cannot make, a voiceover without text, an empty
    prompt. The message is written for the caller."""

    public = True
    code = Code.INVALID_AUDIO_REQUEST


class Provider(Protocol):
    name: str

    def check(self, request: GenerationRequest) -> None:
        """Raise ``InvalidGeneration`` for a request this provider cannot serve; no I/O."""

    async def submit(self, request: GenerationRequest) -> Ticket:
        """Start the generation (the paid step for queue providers)."""

    async def fetch(
        self, ticket: Ticket, dest: Path, *, deadline_s: float, on_status: OnStatus = None
    ) -> Generated:
        """Wait for the result (polling with backoff 1 s -> 10 s) and stream it to ``dest``;
        past ``deadline_s`` seconds of waiting, cancel and raise ``ProviderRejected`` with
        code ``provider_timeout``."""

    async def cancel(self, ticket: Ticket) -> None:
        """Ask the provider to stop; never raises for "already done" or "not found"."""
