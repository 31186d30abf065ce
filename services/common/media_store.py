"""S3 media storage through aioboto3.

Build one :class:`MediaStore` at start-up with :meth:`MediaStore.from_settings` and keep it
open for the life of the service (``async with store: ...``): it holds a single aioboto3
client. Keys given to it are *logical* keys (see :mod:`services.common.keys`); the store
prepends ``settings.s3_key_prefix`` so several environments or test runs can share a bucket.

Large objects are never held in memory: uploads above ``s3_multipart_threshold`` go through
a multipart upload in parts of that size (:data:`PARTS_IN_FLIGHT` sent at once, so at
most that many and the one being read are held), downloads are streamed in chunks. Errors from
botocore/aiohttp are mapped onto the shared taxonomy: connection problems, timeouts, 429 and
5xx become :class:`TransientError`; a missing object becomes :class:`ObjectNotFound`;
anything else is a :class:`PermanentError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import unicodedata
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from services.common.errors import PermanentError, TapedeckError, TransientError
from services.common.growing import Finisher, upload_while_written
from services.common.media_types import content_type_for
from services.common.ports import ObjectInfo
from services.common.presign import Presigner, from_probe

if TYPE_CHECKING:
    from services.common.settings import Settings

__all__ = [
    "DOWNLOAD_CHUNK_SIZE",
    "MAX_PARTS",
    "MediaStore",
    "ObjectInfo",
    "ObjectNotFound",
    "content_type_for",
]

DOWNLOAD_CHUNK_SIZE: Final = 1024 * 1024
MAX_PARTS: Final = 10_000
MIN_PART_SIZE: Final = 5 * 1024 * 1024
# Parts of one upload sent at once. One at a time, a large upload waits on each round trip
# (212 MB took 1.2-1.4 s here, 0.8 s two at a time); each more costs about 16 MB of peak
# memory (a merger muxing onto 1 GiB: +31 MB over idle one at a time, +47-63 MB two,
# +80 MB three).
PARTS_IN_FLIGHT: Final = 2
_DELETE_BATCH: Final = 1000

_NOT_FOUND_CODES: Final = frozenset({"NoSuchKey", "NotFound", "404"})
_TRANSIENT_CODES: Final = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)


class ObjectNotFound(PermanentError):
    """The requested object does not exist."""

    code = "not_found"


def _map_error(exc: BaseException, what: str) -> TapedeckError | None:
    """Translate a botocore/aiohttp exception into the taxonomy, or ``None`` if it is not ours."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code", "") or "")
        message = str(error.get("Message", "") or "")
        status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        detail = f"{what}: {code or status} {message}".rstrip()
        if code == "NoSuchBucket":
            return PermanentError(detail, code="no_such_bucket")
        if code in _NOT_FOUND_CODES or (status == 404 and code != "NoSuchUpload"):
            return ObjectNotFound(f"{what}: not found")
        if code in _TRANSIENT_CODES or status == 429 or (isinstance(status, int) and status >= 500):
            return TransientError(detail)
        if code == "InvalidRange" or status == 416:
            return PermanentError(detail, code="invalid_range")
        return PermanentError(detail, code="s3_error")
    if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError):
        return TransientError(f"{what}: {exc}")
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError):
        return TransientError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, BotoCoreError):
        return PermanentError(f"{what}: {exc}", code="s3_error")
    return None


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    try:
        yield
    except TapedeckError:
        raise
    except Exception as exc:
        mapped = _map_error(exc, what)
        if mapped is None:
            raise
        raise mapped from exc


def _check_key(key: object, *, allow_empty: bool = False) -> str:
    if not isinstance(key, str):
        raise ValueError(f"S3 key must be a string, got {type(key).__name__}")
    if not key:
        if allow_empty:
            return key
        raise ValueError("S3 key must not be empty")
    if key.startswith("/") or "\\" in key:
        raise ValueError(f"invalid S3 key {key!r}")
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        raise ValueError(f"S3 key {key!r} contains control characters")
    segments = key.split("/")
    if any(seg in (".", "..") for seg in segments):
        raise ValueError(f"S3 key {key!r} contains '.' or '..' segments")
    return key


def _range_header(start: int | None, end: int | None) -> str | None:
    if start is None and end is None:
        return None
    first = 0 if start is None else start
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ValueError(f"range start must be a non-negative int, got {start!r}")
    if end is None:
        return f"bytes={first}-"
    if isinstance(end, bool) or not isinstance(end, int) or end < first:
        raise ValueError(f"range end must be an int >= start, got {end!r}")
    return f"bytes={first}-{end}"


class _Upload:
    """One multipart upload: its parts sent :data:`PARTS_IN_FLIGHT` at a time."""

    def __init__(self, store: MediaStore, full: str, upload_id: str) -> None:
        self._store, self.full, self.upload_id = store, full, upload_id
        self._etags: dict[int, str] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def _send(self, number: int, body: bytes) -> None:
        with _s3_errors(f"upload part {number} of {self.full}"):
            resp = await self._store.client.upload_part(
                Bucket=self._store.bucket, Key=self.full, UploadId=self.upload_id,
                PartNumber=number, Body=body,
            )  # fmt: skip
        self._etags[number] = resp["ETag"]

    async def send(self, number: int, body: bytes) -> None:
        if len(self._sending) >= PARTS_IN_FLIGHT:
            done, self._sending = await asyncio.wait(
                self._sending, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()
        self._sending.add(asyncio.create_task(self._send(number, body)))

    async def settled(self) -> None:
        if self._sending:
            done, self._sending = await asyncio.wait(self._sending)
            for task in done:
                task.result()

    async def complete(self, numbers: list[int] | None = None) -> None:
        """Complete the upload of the parts ``numbers`` (all sent, by default): the
        others sent are dropped."""
        await self.settled()
        chosen = sorted(self._etags) if numbers is None else sorted(numbers)
        parts = [{"ETag": self._etags[n], "PartNumber": n} for n in chosen]
        with _s3_errors(f"complete multipart upload {self.full}"):
            await self._store.client.complete_multipart_upload(
                Bucket=self._store.bucket, Key=self.full, UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )  # fmt: skip

    async def abort(self) -> None:
        for task in self._sending:
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._store._abort(self.full, self.upload_id)


class MediaStore:
    """Async S3 media store; open it with ``async with`` before use."""

    def __init__(
        self,
        *,
        bucket: str,
        key_prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        multipart_threshold: int = 8 * 1024 * 1024,
        presign_max_s: int = 7 * 24 * 3600,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        if multipart_threshold < MIN_PART_SIZE:
            raise ValueError(f"multipart_threshold must be >= {MIN_PART_SIZE}")
        if presign_max_s < 1:
            raise ValueError("presign_max_s must be >= 1")
        if key_prefix:
            _check_key(key_prefix)
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.endpoint_url = endpoint_url
        self.region = region
        self.multipart_threshold = multipart_threshold
        self.presign_max_s = presign_max_s
        self._access_key = access_key
        self._secret_key = secret_key
        self._config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            # S3-compatible servers do not all understand the newer flexible checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client_cm: Any = None
        self.bytes_read = 0
        self._client: Any = None
        # Signs GET URLs in process once proven identical to botocore's (presign.py).
        self._presigner: Presigner | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaStore:
        return cls(
            bucket=settings.s3_bucket,
            key_prefix=settings.s3_key_prefix,
            endpoint_url=settings.s3_endpoint,
            region=settings.s3_region,
            access_key=settings.s3_access_key.get_secret_value() or None,
            secret_key=settings.s3_secret_key.get_secret_value() or None,
            multipart_threshold=settings.s3_multipart_threshold,
            presign_max_s=settings.s3_presign_max_s,
        )

    # -- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError("MediaStore is already open")
        import aioboto3

        session = aioboto3.Session()
        client_cm = session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=self._config,
        )
        self._client = await client_cm.__aenter__()
        self._client_cm = client_cm
        self._presigner = await self._local_presigner()
        return self

    async def _local_presigner(self) -> Presigner | None:
        if not (self._access_key and self._secret_key):
            return None
        probe = self.full_key("presign-probe/~x y+z.mp3")
        url: str = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": probe}, ExpiresIn=60
        )
        return from_probe(url, probe, self.bucket, self._access_key, self._secret_key)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        client_cm, self._client_cm, self._client = self._client_cm, None, None
        self._presigner = None
        if client_cm is not None:
            await client_cm.__aexit__(exc_type, exc, tb)

    @property
    def client(self) -> Any:
        """The underlying aiobotocore S3 client (only while the store is open)."""
        if self._client is None:
            raise RuntimeError("MediaStore is not open; use 'async with store:'")
        return self._client

    def full_key(self, key: str) -> str:
        """The real S3 key for a logical key (the configured prefix prepended)."""
        return self.key_prefix + _check_key(key)

    # -- uploads ------------------------------------------------------------------------------

    def _part_size_for(self, size: int) -> int:
        return max(self.multipart_threshold, math.ceil(size / MAX_PARTS))

    async def upload_file(
        self, key: str, path: str | os.PathLike[str], content_type: str | None = None
    ) -> int:
        """Upload a local file and return its size.

        Above the threshold it is a multipart upload streamed from disk, one part at a time.
        """
        full = self.full_key(key)
        ctype = content_type or content_type_for(key)
        size = os.stat(path).st_size
        if size < self.multipart_threshold:
            body = await asyncio.to_thread(Path(path).read_bytes)
            await self._put(full, body, ctype)
            return len(body)

        part_size = self._part_size_for(size)
        fh = await asyncio.to_thread(open, path, "rb")
        try:

            async def parts() -> AsyncIterator[bytes]:
                while True:
                    chunk = await asyncio.to_thread(fh.read, part_size)
                    if not chunk:
                        return
                    yield chunk

            return await self._multipart(full, ctype, parts())
        finally:
            await asyncio.to_thread(fh.close)

    async def upload_stream(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> int:
        """Upload from an async byte stream; buffers at most one part. Returns the total size."""
        full = self.full_key(key)
        ctype = content_type or content_type_for(key)
        part_size = self.multipart_threshold
        buf = bytearray()
        it = aiter(chunks)

        # Fill up to one part first: small streams become a single PUT.
        async for chunk in it:
            buf += chunk
            if len(buf) > part_size:
                break
        else:
            await self._put(full, bytes(buf), ctype)
            return len(buf)

        async def parts() -> AsyncIterator[bytes]:
            nonlocal buf
            async for chunk in it:
                buf += chunk
                while len(buf) > part_size:
                    part = bytes(buf[:part_size])
                    del buf[:part_size]
                    yield part
            while len(buf) > part_size:
                part = bytes(buf[:part_size])
                del buf[:part_size]
                yield part
            if buf:
                yield bytes(buf)
                buf = bytearray()

        return await self._multipart(full, ctype, parts())

    async def _put(self, full: str, body: bytes, content_type: str) -> None:
        with _s3_errors(f"put {full}"):
            await self.client.put_object(
                Bucket=self.bucket, Key=full, Body=body, ContentType=content_type
            )

    async def _begin(self, full: str, content_type: str) -> _Upload:
        with _s3_errors(f"create multipart upload {full}"):
            created = await self.client.create_multipart_upload(
                Bucket=self.bucket, Key=full, ContentType=content_type
            )
        return _Upload(self, full, created["UploadId"])

    async def _multipart(self, full: str, content_type: str, parts: AsyncIterator[bytes]) -> int:
        upload = await self._begin(full, content_type)
        total = 0
        try:
            number = 0
            async for body in parts:
                number += 1
                if number > MAX_PARTS:
                    raise PermanentError(
                        f"upload of {full} needs more than {MAX_PARTS} parts", code="too_large"
                    )
                await upload.send(number, body)
                total += len(body)
            await upload.complete()
        except BaseException:
            await asyncio.shield(upload.abort())
            raise
        return total

    async def upload_growing(
        self,
        key: str,
        path: str | os.PathLike[str],
        written: Awaitable[None],
        content_type: str | None = None,
        finish: Finisher | None = None,
        check: Callable[[], Awaitable[None]] | None = None,
    ) -> int:
        """Upload a file while ``written`` (what writes it, an ffmpeg run) is still at it;
        return the object's size. Most of the upload overlaps the writing; parts the
        writer changed after they went up are sent again, ``finish`` may recompose the
        object from the finished file, and ``check`` (of the finished file) must pass
        before it is stored (see growing.py). When the writer or the check fails,
        nothing is stored and the error is raised."""
        full = self.full_key(key)
        ctype = content_type or content_type_for(key)
        # An upload of this key begun by an attempt that died mid-write (a killed worker)
        # is never completed: aborted here, by the attempt that replaces it, rather than
        # left in the bucket for good.
        await self._abort_begun(full)
        return await upload_while_written(
            Path(path), written,
            part_size=self.multipart_threshold, max_parts=MAX_PARTS,
            begin=lambda: self._begin(full, ctype),
            whole=lambda chunks: self.upload_stream(key, chunks, ctype),
            finish=finish, check=check,
        )  # fmt: skip

    async def _abort_begun(self, full: str) -> None:
        with _s3_errors(f"list uploads {full}"):
            resp = await self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full)
        for upload in resp.get("Uploads") or []:
            if upload["Key"] == full:
                await self._abort(full, upload["UploadId"])

    async def _abort(self, full: str, upload_id: str) -> None:
        # Best effort: the original error matters more than a failed abort.
        with contextlib.suppress(Exception):
            await self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id
            )

    # -- downloads ----------------------------------------------------------------------------

    async def iter_bytes(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        chunk_size: int = DOWNLOAD_CHUNK_SIZE,
    ) -> AsyncGenerator[bytes, None]:
        """Stream an object (or the inclusive byte range ``start..end``) in chunks.

        Close the iterator (``contextlib.aclosing``) when not consuming it to the end.
        """
        full = self.full_key(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
        header = _range_header(start, end)
        if header is not None:
            params["Range"] = header
        what = f"get {full}"
        with _s3_errors(what):
            resp = await self.client.get_object(**params)
        body = resp["Body"]
        async with body:
            while True:
                with _s3_errors(what):
                    chunk = await body.read(chunk_size)
                if not chunk:
                    return
                # Read volume is what a clip costs; the benchmark and metrics read it here.
                self.bytes_read += len(chunk)
                yield chunk

    async def get_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        """The bytes ``start..end_inclusive`` of an object (fewer if the object is shorter)."""
        if isinstance(start, bool) or not isinstance(start, int):
            raise ValueError("start must be an int")
        if isinstance(end_inclusive, bool) or not isinstance(end_inclusive, int):
            raise ValueError("end_inclusive must be an int")
        out = bytearray()
        async with contextlib.aclosing(self.iter_bytes(key, start, end_inclusive)) as it:
            async for chunk in it:
                out += chunk
        return bytes(out)

    async def download_file(
        self,
        key: str,
        path: str | os.PathLike[str],
        start: int | None = None,
        end: int | None = None,
    ) -> int:
        """Stream an object (or its inclusive byte range ``start..end``) to ``path`` and
        return the number of bytes written.

        Written to a temporary name next to ``path`` and renamed once complete.
        """
        dest = Path(path)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")
        size = 0
        fh = await asyncio.to_thread(open, tmp, "wb")
        try:
            try:
                async with contextlib.aclosing(self.iter_bytes(key, start, end)) as it:
                    async for chunk in it:
                        await asyncio.to_thread(fh.write, chunk)
                        size += len(chunk)
            finally:
                await asyncio.to_thread(fh.close)
            await asyncio.to_thread(os.replace, tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return size

    # -- metadata -----------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        """Object metadata, or ``None`` if the object does not exist."""
        full = self.full_key(key)
        try:
            with _s3_errors(f"head {full}"):
                resp = await self.client.head_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            return None
        etag = resp.get("ETag")
        return ObjectInfo(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            content_type=resp.get("ContentType"),
            etag=etag.strip('"') if isinstance(etag, str) else None,
            last_modified=resp.get("LastModified"),
        )

    async def exists(self, key: str) -> bool:
        return await self.head(key) is not None

    async def delete(self, key: str) -> None:
        """Delete an object; deleting a missing object is not an error."""
        full = self.full_key(key)
        try:
            with _s3_errors(f"delete {full}"):
                await self.client.delete_object(Bucket=self.bucket, Key=full)
        except ObjectNotFound:
            pass

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose logical key starts with ``prefix``; returns how many.

        An empty ``prefix`` (everything under the store's key prefix) is only allowed when the
        store has a key prefix, so this can never wipe a whole bucket.
        """
        _check_key(prefix, allow_empty=True)
        if not prefix and not self.key_prefix:
            raise ValueError("refusing to delete the whole bucket: give a non-empty prefix")
        full = self.key_prefix + prefix
        client = self.client
        deleted = 0
        paginator = client.get_paginator("list_objects_v2")
        with _s3_errors(f"delete prefix {full}"):
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", []) or []]
                for i in range(0, len(keys), _DELETE_BATCH):
                    batch = keys[i : i + _DELETE_BATCH]
                    resp = await client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                    errors = resp.get("Errors") or []
                    if errors:
                        first = errors[0]
                        raise PermanentError(
                            f"delete prefix {full}: {len(errors)} objects not deleted, "
                            f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}",
                            code="s3_error",
                        )
                    deleted += len(batch)
        return deleted

    async def copy(self, src: str, dst: str) -> None:
        """Server-side copy (no bytes through this process); objects up to 5 GiB."""
        src_full, dst_full = self.full_key(src), self.full_key(dst)
        with _s3_errors(f"copy {src_full} to {dst_full}"):
            await self.client.copy_object(
                Bucket=self.bucket,
                Key=dst_full,
                CopySource={"Bucket": self.bucket, "Key": src_full},
            )

    async def list_keys(self, prefix: str) -> list[str]:
        """Logical keys of the objects under ``prefix``, sorted (for tests and operators;
        no stage lists objects to do its work)."""
        _check_key(prefix, allow_empty=True)
        full = self.key_prefix + prefix
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with _s3_errors(f"list {full}"):
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys += [obj["Key"][len(self.key_prefix) :] for obj in page.get("Contents") or []]
        return sorted(keys)

    async def incomplete_uploads(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` with a multipart upload begun and never completed or
        aborted: what a crashed upload leaves behind, and storage is billed for."""
        _check_key(prefix, allow_empty=True)
        full = self.key_prefix + prefix
        with _s3_errors(f"list uploads {full}"):
            resp = await self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full)
        return sorted(u["Key"][len(self.key_prefix) :] for u in resp.get("Uploads") or [])

    async def ping(self) -> None:
        """Raises unless the bucket answers (readiness checks)."""
        with _s3_errors(f"head bucket {self.bucket}"):
            await self.client.head_bucket(Bucket=self.bucket)

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet."""
        client = self.client
        try:
            with _s3_errors(f"head bucket {self.bucket}"):
                await client.head_bucket(Bucket=self.bucket)
            return
        except ObjectNotFound:
            pass
        except PermanentError as exc:
            if exc.code != "no_such_bucket":
                raise
        params: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        with _s3_errors(f"create bucket {self.bucket}"):
            try:
                await client.create_bucket(**params)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    # -- presigning ---------------------------------------------------------------------------

    async def presign_get(self, key: str, expires_s: int) -> str:
        """A presigned GET URL valid for ``expires_s`` seconds (1..``s3_presign_max_s``)."""
        if isinstance(expires_s, bool) or not isinstance(expires_s, int):
            raise ValueError(f"expires_s must be an int, got {type(expires_s).__name__}")
        if not 1 <= expires_s <= self.presign_max_s:
            raise ValueError(
                f"expires_s must be between 1 and {self.presign_max_s}, got {expires_s}"
            )
        full = self.full_key(key)
        if self._presigner is not None:
            return self._presigner.url(full, expires_s)
        with _s3_errors(f"presign {full}"):
            url: str = await self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": full},
                ExpiresIn=expires_s,
            )
        return url
