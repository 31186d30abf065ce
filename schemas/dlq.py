"""Dead-letter convention: what a service attaches when it gives up on a message.

A message that cannot be processed is copied, bytes and key unchanged, to
``<topic>.dlq`` (see ``Topic.dlq_name``) with these headers, so it can be
inspected and replayed onto the original topic.
"""

from __future__ import annotations

from datetime import UTC, datetime

HEADER_ERROR = "error"
HEADER_STAGE = "stage"
HEADER_EXCEPTION_TYPE = "exception_type"
HEADER_FIRST_SEEN = "first_seen"
HEADER_ATTEMPTS = "attempts"
# Where the message was read from (its original topic, partition and offset).
HEADER_ORIGINAL_TOPIC = "original_topic"
HEADER_ORIGINAL_PARTITION = "original_partition"
HEADER_ORIGINAL_OFFSET = "original_offset"

DLQ_HEADERS = (
    HEADER_ERROR,
    HEADER_STAGE,
    HEADER_EXCEPTION_TYPE,
    HEADER_FIRST_SEEN,
    HEADER_ATTEMPTS,
)

# Headers are for triage, not for carrying tracebacks.
MAX_ERROR_BYTES = 4096

# A message too large for the DLQ producer keeps only its first bytes there; these
# headers say so, with what is needed to match it to the original.
HEADER_TRUNCATED = "truncated"
HEADER_ORIGINAL_SIZE = "original_size"
HEADER_ORIGINAL_SHA256 = "original_sha256"
TRUNCATED_BODY_BYTES = 64 * 1024


def _truncate(text: str) -> bytes:
    # Cut on bytes, then drop a character split in half by the cut.
    return text.encode()[:MAX_ERROR_BYTES].decode(errors="ignore").encode()


def dlq_headers(
    *,
    error: str,
    stage: str,
    exception: BaseException | str,
    first_seen: datetime,
    attempts: int,
) -> list[tuple[str, bytes]]:
    """Headers in the (name, value) form Kafka clients take.

    ``exception`` may be the exception itself or its qualified type name.
    ``first_seen`` must be timezone-aware; it is written as UTC ISO 8601.
    """
    if first_seen.tzinfo is None:
        raise ValueError("first_seen must be timezone-aware")
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    if isinstance(exception, BaseException):
        exc_type = type(exception)
        exception = f"{exc_type.__module__}.{exc_type.__qualname__}"
    return [
        (HEADER_ERROR, _truncate(error)),
        (HEADER_STAGE, stage.encode()),
        (HEADER_EXCEPTION_TYPE, exception.encode()),
        (HEADER_FIRST_SEEN, first_seen.astimezone(UTC).isoformat().encode()),
        (HEADER_ATTEMPTS, str(attempts).encode()),
    ]
