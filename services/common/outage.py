"""Whether an error means a server Tapedeck depends on (MongoDB, Kafka, S3) could not be
reached or did not answer in time: an outage, waited out by the stage runner, never held
against the event (a job does not fail because MongoDB restarted under it)."""

from __future__ import annotations

import aiohttp
from aiokafka.errors import KafkaError, KafkaTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError
from pymongo.errors import ConnectionFailure, PyMongoError

from services.common.ffmpeg.runner import FFmpegNetworkError

# How far down an error's causes to look (adapters wrap what they caught: ``raise ... from``).
_DEPTH = 6


def is_outage(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(_DEPTH):
        if current is None:
            return False
        if _unreachable(current):
            return True
        current = current.__cause__
    return False


def _unreachable(exc: BaseException) -> bool:
    # MongoDB: no server selected in time, connection refused or reset, a network timeout.
    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return True
    # Kafka: no broker, no leader, a request or a send that timed out.
    if isinstance(exc, KafkaTimeoutError) or (isinstance(exc, KafkaError) and exc.retriable):
        return True
    # S3, through the media store (which keeps the client's error as the cause of its
    # TransientError) or through ffmpeg reading or writing a presigned URL.
    return isinstance(exc, BotoConnectionError | HTTPClientError | aiohttp.ClientConnectionError
                      | FFmpegNetworkError)  # fmt: skip
