"""Streaming multipart reception from an in-memory body, cut into awkward chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.submitter.http.upload import BadUpload, UploadTooLarge, receive_form

BOUNDARY = "xYzBoundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form(*parts: tuple[str, bytes, str | None], end: bool = True) -> bytes:
    out = b""
    for name, data, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    if end:
        out += f"--{BOUNDARY}--\r\n".encode()
    return out


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
async def test_file_and_fields_arrive_whole_whatever_the_chunking(
    tmp_path: Path, chunk_size: int
) -> None:
    payload = bytes(range(256)) * 30 + b"\r\n--not-the-boundary\r\n"
    body = form(("episode_id", b"ep-1", None), ("file", payload, "show.MP3"))
    got = await receive_form(
        CONTENT_TYPE, chunks(body, chunk_size), tmp_path, max_file_bytes=len(payload)
    )
    assert got.fields == {"episode_id": "ep-1"}
    upload = got.files["file"]
    assert upload.filename == "show.MP3" and upload.size == len(payload)
    assert upload.path == tmp_path / "file.MP3"
    assert upload.path.read_bytes() == payload


async def test_the_limit_stops_reading_at_the_first_byte_over(tmp_path: Path) -> None:
    body = form(("file", b"a" * 1000, "a.mp3"))
    consumed = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal consumed
        async for c in chunks(body, 100):
            consumed += len(c)
            yield c

    with pytest.raises(UploadTooLarge):
        await receive_form(CONTENT_TYPE, counted(), tmp_path, max_file_bytes=500)
    assert consumed < len(body)


async def test_unsafe_file_names_do_not_reach_the_disk(tmp_path: Path) -> None:
    body = form(("file", b"x", "../../etc/passwd.$(rm)"))
    got = await receive_form(CONTENT_TYPE, chunks(body, 10), tmp_path, max_file_bytes=10)
    assert got.files["file"].path == tmp_path / "file"
    assert got.files["file"].filename == "../../etc/passwd.$(rm)"


async def test_a_file_field_without_a_filename_is_still_a_file(tmp_path: Path) -> None:
    body = form(("file", b"z" * 5000, None))
    got = await receive_form(CONTENT_TYPE, chunks(body, 512), tmp_path, max_file_bytes=5000)
    assert got.files["file"].size == 5000 and "file" not in got.fields


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (form(("file", b"x", "a")), "multipart/form-data", "boundary"),
        (form(("file", b"x", "a"), end=False), CONTENT_TYPE, "cut short"),
        (form(("other", b"x", "a.mp3")), CONTENT_TYPE, "unexpected file"),
        (form(("file", b"x", "a"), ("file", b"y", "b")), CONTENT_TYPE, "more than one file"),
        (form(("note", b"n" * 5000, None)), CONTENT_TYPE, "longer than"),
        (form(*[(f"f{i}", b"v", None) for i in range(20)]), CONTENT_TYPE, "parts"),
        (b"garbage without any structure", CONTENT_TYPE, "malformed"),
    ],
)
async def test_malformed_forms_are_refused(
    tmp_path: Path, body: bytes, content_type: str, message: str
) -> None:
    with pytest.raises(BadUpload, match=message):
        await receive_form(content_type, chunks(body, 64), tmp_path, max_file_bytes=100)
