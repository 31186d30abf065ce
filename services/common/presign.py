"""Presigned S3 GET URLs signed in process (SigV4 query auth), for the cached-clip path.

botocore's ``generate_presigned_url`` needs no network either, but each call resolves the
endpoint through the ruleset, serializes a whole request and runs the event hooks: about
0.2 ms of CPU, several times what signing takes. This signs the one shape a GET needs.

It is used only where it is provably the same as botocore: :func:`from_probe` reads the
endpoint, bucket path and signing scope off one URL botocore presigned, then signs that
same URL itself at the same instant and must get the same signature, else it declines
(and the store keeps using botocore). Static credentials only: rotating ones (an IAM
role) are botocore's to refresh.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

_ALGORITHM = "AWS4-HMAC-SHA256"
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class Presigner:
    def __init__(
        self,
        *,
        base_url: str,
        bucket_path: str,
        region: str,
        service: str,
        access_key: str,
        secret_key: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        if parts.port is not None and str(parts.port) != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        self._base = f"{parts.scheme}://{parts.netloc}"
        self._host = host
        self._bucket_path = bucket_path  # "/{bucket}" (path style), as botocore builds it
        self._region = region
        self._service = service
        self._access_key = access_key
        self._secret = secret_key
        self._clock = clock
        self._day = ""
        self._day_key = b""

    def url(self, full_key: str, expires_s: int, *, at: datetime | None = None) -> str:
        """A presigned GET of ``full_key`` (the object's real key, prefix included)."""
        now = at or datetime.fromtimestamp(self._clock(), UTC)
        stamp = now.strftime(_TIMESTAMP)
        day = stamp[:8]
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        path = f"{self._bucket_path}/{quote(full_key, safe='/~')}"
        query = (
            f"X-Amz-Algorithm={_ALGORITHM}"
            f"&X-Amz-Credential={quote(f'{self._access_key}/{scope}', safe='-_.~')}"
            f"&X-Amz-Date={stamp}&X-Amz-Expires={expires_s}&X-Amz-SignedHeaders=host"
        )
        # The parameters above are already in canonical (sorted) order.
        canonical = f"GET\n{path}\n{query}\nhost:{self._host}\n\nhost\nUNSIGNED-PAYLOAD"
        to_sign = (
            f"{_ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256)
        return f"{self._base}{path}?{query}&X-Amz-Signature={signature.hexdigest()}"

    def _signing_key(self, day: str) -> bytes:
        # Derived once a day rather than four HMACs per URL.
        if day != self._day:
            key = _hmac(f"AWS4{self._secret}".encode(), day)
            for part in (self._region, self._service, "aws4_request"):
                key = _hmac(key, part)
            self._day, self._day_key = day, key
        return self._day_key


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def from_probe(
    probe_url: str, probe_key: str, bucket: str, access_key: str, secret_key: str
) -> Presigner | None:
    """A presigner that reproduces ``probe_url`` (botocore's presigned GET of
    ``probe_key`` in ``bucket``) exactly, or None when it would not."""
    parts = urlsplit(probe_url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    bucket_path = f"/{quote(bucket, safe='~')}"
    if parts.path != f"{bucket_path}/{quote(probe_key, safe='/~')}":
        return None  # virtual-hosted or otherwise shaped: botocore's to build
    credential = query.get("X-Amz-Credential", "").split("/")
    if len(credential) != 5 or credential[0] != access_key or credential[4] != "aws4_request":
        return None
    if "X-Amz-Security-Token" in query or query.get("X-Amz-SignedHeaders") != "host":
        return None
    try:
        at = datetime.strptime(query["X-Amz-Date"], _TIMESTAMP).replace(tzinfo=UTC)
        expires = int(query["X-Amz-Expires"])
    except (KeyError, ValueError):
        return None
    presigner = Presigner(
        base_url=f"{parts.scheme}://{parts.netloc}",
        bucket_path=bucket_path,
        region=credential[2],
        service=credential[3],
        access_key=access_key,
        secret_key=secret_key,
    )
    return presigner if presigner.url(probe_key, expires, at=at) == probe_url else None
