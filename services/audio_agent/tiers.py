"""Which provider and model serve a (tier, kind): configuration, overridable per job."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from services.audio_agent.providers.base import InvalidGeneration

TIERS = ("basic", "standard", "premium")
KINDS = ("music", "sfx", "voiceover")


@dataclass(frozen=True)
class Route:
    provider: str
    model: str


# Everything offline: the default, so a fresh deployment, CI and `make run` need no keys.
LOCAL: Mapping[str, Mapping[str, Route]] = {
    tier: {kind: Route("local", "local") for kind in KINDS} for tier in TIERS
}
# What a deployment with provider keys typically wants (AUDIO_TIER_MAP=production).
PRODUCTION: Mapping[str, Mapping[str, Route]] = {
    "basic": {kind: Route("local", "local") for kind in KINDS},
    "standard": {
        "music": Route("fal", "cassetteai/music-generator"),
        "sfx": Route("fal", "cassetteai/sound-effects-generator"),
        "voiceover": Route("elevenlabs", "eleven_flash_v2_5"),
    },
    "premium": {
        "music": Route("replicate", "stereo-melody-large"),
        "sfx": Route("elevenlabs", "eleven_text_to_sound_v2"),
        "voiceover": Route("elevenlabs", "eleven_multilingual_v2"),
    },
}


# A provider named by a job without a model gets its usual one for the kind.
DEFAULT_MODELS: Mapping[str, Mapping[str, str]] = {
    "local": {kind: "local" for kind in KINDS},
    "fal": {"music": "cassetteai/music-generator", "sfx": "cassetteai/sound-effects-generator"},
    "replicate": {"music": "stereo-melody-large"},
    "elevenlabs": {"sfx": "eleven_text_to_sound_v2", "voiceover": "eleven_multilingual_v2"},
}


class TierMap:
    def __init__(self, routes: Mapping[str, Mapping[str, Route]]) -> None:
        for tier in TIERS:
            for kind in KINDS:
                if kind not in routes.get(tier, {}):
                    raise ValueError(f"the tier map has no route for {tier}/{kind}")
        self._routes = routes

    @classmethod
    def parse(cls, spec: str) -> TierMap:
        """``local``, ``production``, or JSON ``{tier: {kind: "provider:model"}}`` (tiers
        or kinds left out fall back to ``local``)."""
        spec = spec.strip()
        if spec in ("", "local"):
            return cls(LOCAL)
        if spec == "production":
            return cls(PRODUCTION)
        try:
            raw = json.loads(spec)
            routes = {
                tier: {
                    kind: _route(str(raw[tier][kind]))
                    if kind in raw.get(tier, {})
                    else LOCAL[tier][kind]
                    for kind in KINDS
                }
                for tier in TIERS
            }
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise ValueError(f"AUDIO_TIER_MAP is not a valid tier map: {exc}") from None
        return cls(routes)

    def route(
        self, tier: str, kind: str, provider: str | None = None, model: str | None = None
    ) -> Route:
        """The job's own provider/model when it names them, else the tier's."""
        if tier not in self._routes or kind not in self._routes[tier]:
            raise InvalidGeneration(f"no route for tier {tier!r} and kind {kind!r}", provider="")
        base = self._routes[tier][kind]
        if provider is None or provider == base.provider:
            return Route(base.provider, model or base.model)
        # Another provider than the tier's: the tier's model means nothing to it.
        chosen = model or DEFAULT_MODELS.get(provider, {}).get(kind)
        if chosen is None:
            raise InvalidGeneration(
                f"provider {provider!r} does not make {kind} audio", provider=provider
            )
        return Route(provider, chosen)


def _route(text: str) -> Route:
    provider, sep, model = text.partition(":")
    if not sep or not provider or not model:
        raise ValueError(f"{text!r} is not 'provider:model'")
    return Route(provider, model)
