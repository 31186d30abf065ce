"""Prompt enhancement per kind: the words the old system appended, kept apart from what
the job asked for so both can be recorded."""

from __future__ import annotations

import re

from services.audio_agent.providers.base import InvalidGeneration

SUFFIXES = {
    "music": "instrumental, high quality, seamless",
    "sfx": "ambient sounds, realistic, high quality",
    "voiceover": "",
}
_SPACE = re.compile(r"\s+")


def normalise(prompt: str) -> str:
    """Whitespace folded and trimmed: what the cache key and the providers see."""
    return _SPACE.sub(" ", prompt).strip()


def enhance(kind: str, prompt: str, enabled: bool = True) -> str:
    """The prompt as sent. Raises ``InvalidGeneration`` when nothing is left after trimming."""
    base = normalise(prompt)
    if not base:
        raise InvalidGeneration("the prompt is empty after trimming", provider="")
    suffix = SUFFIXES.get(kind, "")
    if not enabled or not suffix or suffix in base.lower():
        return base
    return f"{base}, {suffix}"
