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
