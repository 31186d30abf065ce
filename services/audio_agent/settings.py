"""Audio agent settings: provider endpoints and keys, pinned models, the tier map, limits.

Keys are secrets (Kubernetes secrets in production); a provider whose key is missing
can still be configured, and a job routed to it fails at once with a clear code rather
than at start, so an offline deployment (the ``local`` provider) needs no key at all.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.common.settings import Settings


class AudioAgentSettings(Settings):
    # Provider endpoints: the real services by default; tests point them at local servers
    # that speak the same contracts.
    fal_queue_url: str = Field("https://queue.fal.run", alias="FAL_QUEUE_URL")
    fal_key: SecretStr | None = Field(None, alias="FAL_KEY")
    replicate_api_url: str = Field("https://api.replicate.com", alias="REPLICATE_API_URL")
    replicate_api_token: SecretStr | None = Field(None, alias="REPLICATE_API_TOKEN")
    # meta/musicgen is a community model: predictions name a pinned version id.
    replicate_musicgen_version: str = Field(
        "671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb",
        alias="REPLICATE_MUSICGEN_VERSION",
    )
    elevenlabs_api_url: str = Field("https://api.elevenlabs.io", alias="ELEVENLABS_API_URL")
    elevenlabs_api_key: SecretStr | None = Field(None, alias="ELEVENLABS_API_KEY")
    elevenlabs_voice_id: str = Field("21m00Tcm4TlvDq8ikWAM", alias="ELEVENLABS_VOICE_ID")

    # HTTP behaviour shared by the remote providers.
    provider_connect_timeout_s: float = Field(10.0, alias="PROVIDER_CONNECT_TIMEOUT_S", gt=0)
    provider_read_timeout_s: float = Field(60.0, alias="PROVIDER_READ_TIMEOUT_S", gt=0)
    provider_max_retries: int = Field(5, alias="PROVIDER_MAX_RETRIES", ge=0)
    provider_poll_min_s: float = Field(1.0, alias="PROVIDER_POLL_MIN_S", gt=0)
    provider_poll_max_s: float = Field(10.0, alias="PROVIDER_POLL_MAX_S", gt=0)
    # The old system polled 60 times, about 10 minutes: a scene's whole wait.
    scene_deadline_s: float = Field(600.0, alias="SCENE_DEADLINE_S", gt=0)

    # The tier map: JSON {tier: {kind: "provider:model"}}; empty means the built-in one.
    audio_tier_map: str = Field("", alias="AUDIO_TIER_MAP")
    audio_concurrency: int = Field(4, alias="AUDIO_CONCURRENCY", ge=1, le=64)
    audio_scene_concurrency: int = Field(3, alias="AUDIO_SCENE_CONCURRENCY", ge=1, le=32)
    audio_cache_enabled: bool = Field(True, alias="AUDIO_CACHE_ENABLED")
    audio_web_port: int | None = Field(None, alias="AUDIO_WEB_PORT")
