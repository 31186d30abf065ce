"""Typed settings shared by every service.

Defaults point at the local stack started by ``scripts/stack up``; every value can be
overridden from the environment so the same code runs against a remote Kafka cluster,
MongoDB Atlas or AWS S3. Nothing is read until a ``Settings`` object is built.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field("127.0.0.1:9092", alias="KAFKA_BOOTSTRAP")
    # Prepended to every topic name from the registry: lets tests and tenants share a cluster.
    topic_prefix: str = Field("", alias="TOPIC_PREFIX")
    topic_partitions: int | None = Field(None, alias="TOPIC_PARTITIONS", ge=1)
    topic_replication: int = Field(1, alias="TOPIC_REPLICATION", ge=1)

    mongo_url: str = Field("mongodb://127.0.0.1:27017", alias="MONGO_URL")
    mongo_db: str = Field("tapedeck", alias="MONGO_DB")
    # How long a request waits for a reachable server before failing (pymongo's 30 s
    # default would hang every API call that long while MongoDB is down).
    mongo_timeout_ms: int = Field(5000, alias="MONGO_TIMEOUT_MS", ge=100)
    # How long a call waits on an open connection that has gone silent. Without it a
    # request whose reply is lost waits until the driver's monitor gives up on the
    # server (if ever), holding the batch of ledger and lease calls it belongs to;
    # every call Tapedeck makes answers in milliseconds.
    mongo_socket_timeout_ms: int = Field(20000, alias="MONGO_SOCKET_TIMEOUT_MS", ge=100)

    s3_endpoint: str | None = Field("http://127.0.0.1:7070", alias="S3_ENDPOINT")
    s3_region: str = Field("us-east-1", alias="S3_REGION")
    s3_bucket: str = Field("tapedeck", alias="S3_BUCKET")
    # Lets several test runs or environments share one bucket without touching each other.
    s3_key_prefix: str = Field("", alias="S3_KEY_PREFIX")
    s3_access_key: SecretStr = Field(SecretStr("tapedeck-local"), alias="S3_ACCESS_KEY")
    s3_secret_key: SecretStr = Field(SecretStr("tapedeck-local-secret"), alias="S3_SECRET_KEY")
    s3_multipart_threshold: int = Field(
        8 * 1024 * 1024, alias="S3_MULTIPART_THRESHOLD", ge=5 * 1024 * 1024
    )
    s3_presign_max_s: int = Field(7 * 24 * 3600, alias="S3_PRESIGN_MAX_S", ge=1)

    ffmpeg_bin: str = Field("ffmpeg", alias="FFMPEG_BIN")
    ffprobe_bin: str = Field("ffprobe", alias="FFPROBE_BIN")
    ffmpeg_timeout_s: float = Field(300.0, alias="FFMPEG_TIMEOUT_S", gt=0)

    # Stage retry policy for transient errors.
    retry_max_attempts: int = Field(5, alias="RETRY_MAX_ATTEMPTS", ge=1)
    retry_base_delay_s: float = Field(0.2, alias="RETRY_BASE_DELAY_S", ge=0)
    retry_max_delay_s: float = Field(10.0, alias="RETRY_MAX_DELAY_S", ge=0)
    max_message_bytes: int = Field(1024 * 1024, alias="MAX_MESSAGE_BYTES", ge=1024)

    # A worker's stable name among its stage's workers (e.g. its pod name). Set, it is the
    # worker's static consumer-group membership: restarted, it gets its partitions back at
    # once instead of after the dead member's session times out.
    worker_id: str | None = Field(None, alias="WORKER_ID", min_length=1, max_length=200)
    # How long the broker waits for a silent worker before its partitions move to another:
    # what a worker killed for good (no restart under its WORKER_ID) costs its partitions.
    kafka_session_timeout_s: float = Field(10.0, alias="KAFKA_SESSION_TIMEOUT_S", ge=6, le=300)
    # How long a worker may take to stop once told to (SIGTERM): events in hand are handed
    # back at once, but the last offset commit waits on Kafka, for ever when it is away;
    # past this the process exits regardless. Keep it under the pod's grace period.
    shutdown_timeout_s: float = Field(30.0, alias="SHUTDOWN_TIMEOUT_S", gt=0)
    # Events a stage worker has in hand at once: their bookkeeping (ledger, lease, emit)
    # overlaps and goes to MongoDB in batches. The stage's own concurrency setting
    # (CLIPPER_CONCURRENCY, ...) still bounds how many run their handler at once.
    stage_in_flight: int = Field(64, alias="STAGE_IN_FLIGHT", ge=1, le=1024)

    # Clips: shared by the clipper and the submitter's cache-hit path so both agree.
    clip_max_duration_ms: int = Field(10 * 60 * 1000, alias="CLIP_MAX_DURATION_MS", ge=1)
    clip_url_expiry_s: int = Field(24 * 3600, alias="CLIP_URL_EXPIRY_S", ge=1)

    # Faust keeps worker state here; with in-memory tables it is scratch space only.
    faust_data_dir: str = Field(
        default_factory=lambda: os.path.join(tempfile.gettempdir(), "tapedeck-faust"),
        alias="FAUST_DATA_DIR",
    )

    log_level: str = Field("INFO", alias="LOG_LEVEL")
    # json: one JSON object per line (for log collectors); text: for people at a terminal.
    log_format: Literal["json", "text"] = Field("json", alias="LOG_FORMAT")

    # A worker's web port (its own setting, e.g. CLIPPER_WEB_PORT) serves /metrics, /healthz
    # and /readyz on this address: 127.0.0.1 keeps them in the pod, 0.0.0.0 lets
    # Prometheus scrape them.
    web_bind: str = Field("127.0.0.1", alias="WEB_BIND")
    # /readyz turns red when records wait on this worker's partitions and none was
    # finished for this long (an event in hand counts until its deadline has passed).
    stall_window_s: float = Field(120.0, alias="STALL_WINDOW_S", gt=0)
    stall_deadline_s: float = Field(900.0, alias="STALL_DEADLINE_S", gt=0)
    stall_check_s: float = Field(15.0, alias="STALL_CHECK_S", gt=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
