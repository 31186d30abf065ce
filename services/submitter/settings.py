"""The submitter's settings: the shared ones plus the HTTP API's own."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings


class SubmitterSettings(Settings):
    api_host: str = Field("127.0.0.1", alias="API_HOST")
    api_port: int = Field(8080, alias="API_PORT", ge=0, le=65535)
    # Uploads are streamed to disk, so this bounds disk use per request, not memory.
    upload_max_bytes: int = Field(2 * 1024**3, alias="UPLOAD_MAX_BYTES", ge=1)
    # How long a cache miss may hold its HTTP request open before answering 202.
    clip_wait_timeout_s: float = Field(15.0, alias="CLIP_WAIT_TIMEOUT_S", ge=0)
    # Jobs: how long result links live, and each tenant's fair share.
    job_url_expiry_s: int = Field(3600, alias="JOB_URL_EXPIRY_S", ge=60)
    job_rate_per_minute: int = Field(60, alias="JOB_RATE_PER_MINUTE", ge=1)
    job_max_in_flight: int = Field(20, alias="JOB_MAX_IN_FLIGHT", ge=1)
    # Callback URLs are https to public addresses; these open that up for local use.
    webhook_allow_http: bool = Field(False, alias="WEBHOOK_ALLOW_HTTP")
    webhook_allow_private: bool = Field(False, alias="WEBHOOK_ALLOW_PRIVATE")
    # POST /v1/media: the largest upload (streamed to disk, then to S3).
    media_max_bytes: int = Field(2 * 1024**3, alias="MEDIA_MAX_BYTES", ge=1)
    # POST /v1/merges: how long a merge may hold its HTTP request open before answering 202.
    merge_wait_timeout_s: float = Field(30.0, alias="MERGE_WAIT_TIMEOUT_S", ge=0)
    # API processes (uvicorn workers) sharing the port; each has its own clients and caches.
    api_workers: int = Field(1, alias="API_WORKERS", ge=1)
    # Per-process caches of the cached-clip path: how long an entry is trusted (which
    # bounds how long a revoked key, a removed episode or a deleted clip is still honoured
    # by a process that did not make the change; 0 turns the cache off) and how many.
    key_cache_ttl_s: float = Field(30.0, alias="KEY_CACHE_TTL_S", ge=0)
    key_cache_max: int = Field(10_000, alias="KEY_CACHE_MAX", ge=1)
    episode_cache_ttl_s: float = Field(60.0, alias="EPISODE_CACHE_TTL_S", ge=0)
    episode_cache_max: int = Field(5_000, alias="EPISODE_CACHE_MAX", ge=1)
    clip_cache_ttl_s: float = Field(30.0, alias="CLIP_CACHE_TTL_S", ge=0)
    clip_cache_max: int = Field(20_000, alias="CLIP_CACHE_MAX", ge=1)
    # Cache hits are counted in memory and written this often, at most this many ranges
    # between writes (past it a hit is dropped uncounted, and the drop logged).
    hit_log_flush_s: float = Field(5.0, alias="HIT_LOG_FLUSH_S", gt=0)
    hit_log_max_ranges: int = Field(10_000, alias="HIT_LOG_MAX_RANGES", ge=1)
