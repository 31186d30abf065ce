"""Streaming ``multipart/form-data`` reception: file parts go to disk chunk by chunk.

Starlette's form parser reads the whole body before a handler runs, so an upload limit
could only be checked after the disk is already full; here every chunk is counted as it
arrives and the upload stops at the first byte over the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from schemas.codes import Code
from services.common.ffmpeg import temp_workdir
from services.submitter.http.errors import ApiError

if TYPE_CHECKING:
    # Defined for type checkers only.
    from python_multipart.multipart import MultipartCallbacks

_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload exceeds the limit of {limit} bytes")
        self.limit = limit


class BadUpload(ValueError):
    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


@dataclass
class ReceivedFile:
    path: Path
    filename: str | None
    size: int = 0


@dataclass
class ReceivedForm:
    files: dict[str, ReceivedFile] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    file: ReceivedFile | None = None
    data: bytearray = field(default_factory=bytearray)


class _Receiver:
    def __init__(
        self,
        workdir: Path,
        *,
        file_fields: frozenset[str],
        max_file_bytes: int,
        max_field_bytes: int,
        max_parts: int,
    ) -> None:
        self.form = ReceivedForm()
        self._workdir = workdir
        self._file_fields = file_fields
        self._max_file_bytes = max_file_bytes
        self._max_field_bytes = max_field_bytes
        self._max_parts = max_parts
        self._parts = 0
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()
        # File bytes collected by the (synchronous) parser callbacks, written after each
        # chunk off the event loop.
        self.to_write: list[bytes] = []
        self.opening: Path | None = None
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            raise BadUpload(Code.INVALID_FORM, f"the form has more than {self._max_parts} parts")
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._part.headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get(b"content-disposition"))
        if b"name" not in options:
            raise BadUpload(Code.INVALID_FORM, "a form part has no name")
        name = options[b"name"].decode("utf-8", "replace")
        self._part.name = name
        # A file field is a file whether or not the client named the file.
        if name not in self._file_fields:
            if b"filename" in options:
                raise BadUpload(Code.INVALID_FORM, f"unexpected file in form field {name!r}", name)
            return
        if self.form.files:
            raise BadUpload(Code.INVALID_FORM, "the form holds more than one file", name)
        filename = options.get(b"filename", b"").decode("utf-8", "replace") or None
        suffix = Path(filename or "").suffix
        local = self._workdir / f"{name}{suffix if _SAFE_SUFFIX.fullmatch(suffix) else ''}"
        self._part.file = ReceivedFile(local, filename)
        self.form.files[name] = self._part.file
        self.opening = local

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        received = self._part.file
        if received is not None:
            received.size += len(chunk)
            if received.size > self._max_file_bytes:
                raise UploadTooLarge(self._max_file_bytes)
            self.to_write.append(chunk)
            return
        if len(self._part.data) + len(chunk) > self._max_field_bytes:
            raise BadUpload(
                Code.INVALID_FORM,
                f"form field {self._part.name!r} is longer than {self._max_field_bytes} bytes",
                self._part.name,
            )
        self._part.data += chunk

    def _on_end(self) -> None:
        self.ended = True

    def _on_part_end(self) -> None:
        if self._part.file is None:
            self.form.fields[self._part.name] = self._part.data.decode("utf-8", "replace")


async def receive_form(
    content_type: str,
    body: AsyncIterator[bytes],
    workdir: Path,
    *,
    max_file_bytes: int,
    file_fields: frozenset[str] = frozenset({"file"}),
    max_field_bytes: int = 4096,
    max_parts: int = 16,
) -> ReceivedForm:
    """Read a multipart body; files land in ``workdir``, which the caller removes."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadUpload(Code.INVALID_FORM, "multipart/form-data without a boundary")
    receiver = _Receiver(
        workdir,
        file_fields=file_fields,
        max_file_bytes=max_file_bytes,
        max_field_bytes=max_field_bytes,
        max_parts=max_parts,
    )
    parser = MultipartParser(boundary, receiver.callbacks())
    handle: IO[bytes] | None = None
    try:
        async for chunk in body:
            _write(parser, chunk)
            # One file at most, so one handle, opened once its part's headers are read.
            if receiver.opening is not None:
                handle = await asyncio.to_thread(open, receiver.opening, "wb")
                receiver.opening = None
            if receiver.to_write and handle is not None:
                data = b"".join(receiver.to_write)
                receiver.to_write.clear()
                await asyncio.to_thread(handle.write, data)
        parser.finalize()
        if not receiver.ended:
            raise BadUpload(Code.INVALID_FORM, "the multipart body is cut short")
    finally:
        if handle is not None:
            await asyncio.shield(asyncio.to_thread(handle.close))
    return receiver.form


def _write(parser: MultipartParser, chunk: bytes) -> None:
    try:
        parser.write(chunk)
    except FormParserError as exc:
        raise BadUpload(Code.INVALID_FORM, "the multipart body is malformed") from exc


# A form's own bytes (boundaries, headers, other fields) beyond its file, at most.
FORM_OVERHEAD_MAX = 1024 * 1024


@contextlib.asynccontextmanager
async def received_file(
    request: Request, *, limit: int, workdir_prefix: str, empty_code: str
) -> AsyncIterator[tuple[ReceivedForm, ReceivedFile]]:
    """The multipart form of ``request`` with its ``file`` field, streamed to a scratch
    directory (removed afterwards) and refused at the first byte over ``limit``: every
    upload route's errors in one place (413, the form's own 422s, a missing or empty file)."""
    content_type = request.headers.get("content-type", "")
    declared = request.headers.get("content-length", "")
    # Refused before a byte is read when the client says up front it is too big.
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_MAX:
        raise _too_large(limit)
    async with temp_workdir(prefix=workdir_prefix) as workdir:
        try:
            form = await receive_form(content_type, request.stream(), workdir, max_file_bytes=limit)
        except UploadTooLarge:
            raise _too_large(limit) from None
        except BadUpload as exc:
            raise ApiError(exc.code, exc.message, param=exc.param) from None
        upload = form.files.get("file")
        if upload is None:
            raise ApiError(Code.MISSING_FILE, "the form has no 'file' field", param="file")
        if upload.size == 0:
            raise ApiError(empty_code, "the uploaded file is empty", param="file")
        yield form, upload


def _too_large(limit: int) -> ApiError:
    return ApiError(Code.TOO_LARGE, f"the upload exceeds {limit} bytes", param="file")
