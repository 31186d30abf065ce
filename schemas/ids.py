"""Identifier and key types shared by every event.

Ids end up in S3 keys, Mongo ids, log lines and Kafka keys, so they are held to
a narrow alphabet: nothing that can traverse a path, break a header or hide in a
terminal.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

PLAIN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_PLAIN_ID_RE = re.compile(PLAIN_ID_PATTERN)


def is_plain_id(value: object) -> bool:
    """True when ``value`` is acceptable wherever a ``PlainId`` is expected."""
    return (
        isinstance(value, str)
        # fullmatch: ``$`` alone would let a trailing newline through.
        and _PLAIN_ID_RE.fullmatch(value) is not None
        and ".." not in value
    )


def _reject_dot_dot(value: str) -> str:
    if ".." in value:
        raise ValueError("id must not contain '..'")
    return value


PlainId = Annotated[
    str,
    StringConstraints(pattern=PLAIN_ID_PATTERN),
    # The pattern cannot say "no '..'" without a lookahead, which would push
    # pydantic onto the slower Python regex engine; check it separately and
    # still publish the rule in the JSON Schema.
    AfterValidator(_reject_dot_dot),
    Field(json_schema_extra={"not": {"pattern": r"\.\."}}),
]
"""Job, request, tenant and episode ids."""


def _check_s3_key(value: str) -> str:
    if value.startswith("/"):
        raise ValueError("S3 key must be relative (no leading '/')")
    if any(part in {".", ".."} for part in value.split("/")):
        raise ValueError("S3 key must not contain '.' or '..' segments")
    return value


S3Key = Annotated[
    str,
    # No control characters: keys are also used as local scratch paths and
    # logged verbatim.
    StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$"),
    AfterValidator(_check_s3_key),
]
"""An object key inside the media bucket (not an ``s3://`` URI)."""

TraceId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
"""Correlation ids may arrive from HTTP headers, so any visible ASCII is fine."""

NonEmptyStr = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]
"""Free text that must say something (whitespace only is rejected)."""
