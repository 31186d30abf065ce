"""The Standard Webhooks signature scheme (https://www.standardwebhooks.com), pure.

A secret is ``whsec_`` followed by base64 of random bytes; the HMAC key is those bytes.
A signature is ``v1,`` + base64(HMAC-SHA256(key, "{msg_id}.{timestamp}.{body}")); a
request carries one per live secret, space separated, so a receiver keeps verifying
while a rotated secret's grace period runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
VERSION = "v1"
TOLERANCE_S = 300


class WebhookVerificationError(ValueError):
    """A request that does not verify; the message never holds a secret or signature."""


def secret_key(secret: str) -> bytes:
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a webhook signing secret (whsec_ + base64)") from None
    if not key:
        raise ValueError("not a webhook signing secret (whsec_ + base64)")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    # A dot in the id or a non-integer timestamp would make the signed content ambiguous.
    if "." in msg_id or not msg_id:
        raise ValueError("a webhook id must be non-empty and hold no '.'")
    content = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def headers(
    secrets: str | Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in ``secrets``."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("no secret to sign with")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in keys),
    }


def verify(
    secrets: str | Sequence[str],
    request_headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookVerificationError` unless one of the request's signatures was
    made with one of ``secrets`` over this body, and its timestamp is within
    ``tolerance_s`` of ``now`` (replays of old requests fail)."""
    found = {k.lower(): v for k, v in request_headers.items()}
    msg_id = found.get("webhook-id")
    stamp = found.get("webhook-timestamp")
    given = found.get("webhook-signature")
    if not msg_id or not stamp or not given:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if "." in msg_id:
        raise WebhookVerificationError("webhook-id holds a '.'")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = [sign(s, msg_id, timestamp, body) for s in keys]
    offered = given.split()
    # Every pair is compared, in constant time, so timing says nothing about which matched.
    matched = [hmac.compare_digest(e.encode(), o.encode()) for e in expected for o in offered]
    if not any(matched):
        raise WebhookVerificationError("no signature matches")
