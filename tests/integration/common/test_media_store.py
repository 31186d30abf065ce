from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import httpx
import pytest

from services.common.errors import PermanentError, TransientError
from services.common.keys import audio_key, clip_key, episode_key, render_key
from services.common.media_store import PARTS_IN_FLIGHT, MediaStore, ObjectNotFound
from services.common.settings import Settings

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


async def test_write_head_and_ranged_get(store: MediaStore, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    src = tmp_path / "in.mp3"
    src.write_bytes(data)
    key = audio_key("job-1", "speech.mp3")

    assert await store.upload_file(key, src) == len(data)
    info = await store.head(key)
    assert info is not None
    assert info.key == key
    assert info.size == len(data)
    assert info.content_type == "audio/mpeg"
    assert info.etag == hashlib.md5(data).hexdigest()
    assert info.last_modified is not None
    assert await store.exists(key)

    assert await store.get_range(key, 0, 0) == data[:1]
    assert await store.get_range(key, 1000, 1999) == data[1000:2000]
    assert await store.get_range(key, 99_990, 200_000) == data[99_990:]
    chunks = [c async for c in store.iter_bytes(key, start=50_000, chunk_size=7_000)]
    assert b"".join(chunks) == data[50_000:]

    out = tmp_path / "out.mp3"
    assert await store.download_file(key, out) == len(data)
    assert out.read_bytes() == data
    assert _names(tmp_path) == ["in.mp3", "out.mp3"]  # no temporary leftovers

    await store.delete(key)
    assert await store.head(key) is None
    await store.delete(key)  # idempotent


async def test_key_prefix_is_applied(store: MediaStore, settings: Settings) -> None:
    key = episode_key("acme", "ep1", "meta.json")
    assert store.full_key(key) == f"{settings.s3_key_prefix}{key}"
    await store.upload_stream(key, _chunks([b'{"a": 1}']))
    info = await store.head(key)
    assert info is not None and (info.size, info.content_type) == (8, "application/json")
    assert await store.list_keys("episodes/acme/ep1/") == [key]


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_presigned_get_with_httpx(store: MediaStore) -> None:
    data = os.urandom(64 * 1024)
    key = clip_key("acme", "ep7", 0, 1500, "mp3")
    await store.upload_stream(key, _chunks([data[:1000], data[1000:]]), content_type="audio/mpeg")

    url = await store.presign_get(key, 60)
    assert urlsplit(url).path.endswith(store.full_key(key))
    async with httpx.AsyncClient(timeout=10) as http:
        full = await http.get(url)
        assert full.status_code == 200
        assert full.content == data
        assert full.headers["content-type"] == "audio/mpeg"

        ranged = await http.get(url, headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206
        assert ranged.content == data[100:200]
        assert ranged.headers["content-range"] == f"bytes 100-199/{len(data)}"

        tampered = await http.get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))
        assert tampered.status_code == 403


async def test_presign_expiry_is_validated(store: MediaStore, settings: Settings) -> None:
    key = audio_key("job", "a.mp3")
    assert await store.presign_get(key, settings.s3_presign_max_s)
    assert await store.presign_get(key, 1)
    for bad in (0, -5, settings.s3_presign_max_s + 1):
        with pytest.raises(ValueError):
            await store.presign_get(key, bad)


async def test_multipart_upload_file_round_trips(
    small_part_store: MediaStore, tmp_path: Path
) -> None:
    store = small_part_store
    src = tmp_path / "big.wav"
    with src.open("wb") as fh:
        for _ in range(12):
            fh.write(os.urandom(MiB))
    key = audio_key("job-big", "big.wav")

    assert await store.upload_file(key, src) == 12 * MiB
    info = await store.head(key)
    assert info is not None
    assert info.size == 12 * MiB
    assert info.etag is not None and info.etag.endswith("-3")  # 5 + 5 + 2 MiB parts
    assert info.content_type == "audio/wav"

    out = tmp_path / "back.wav"
    assert await store.download_file(key, out) == 12 * MiB
    assert _sha256_file(out) == _sha256_file(src)
    with src.open("rb") as fh:
        fh.seek(5 * MiB - 10)
        expected = fh.read(20)
    assert await store.get_range(key, 5 * MiB - 10, 5 * MiB + 9) == expected


async def test_multipart_upload_stream_round_trips(small_part_store: MediaStore) -> None:
    store = small_part_store
    digest = hashlib.sha256()
    sizes = [3 * MiB + 17, 4 * MiB, 1, 2 * MiB, 3 * MiB - 18]  # 12 MiB in odd chunks

    async def produce() -> AsyncIterator[bytes]:
        for size in sizes:
            chunk = os.urandom(size)
            digest.update(chunk)
            yield chunk

    key = render_key("job-stream", "mix.mp3")
    assert await store.upload_stream(key, produce()) == 12 * MiB
    info = await store.head(key)
    assert info is not None and info.size == 12 * MiB
    assert info.etag is not None and info.etag.endswith("-3")

    back = hashlib.sha256()
    async for chunk in store.iter_bytes(key):
        back.update(chunk)
    assert back.hexdigest() == digest.hexdigest()


async def test_failed_multipart_is_aborted(small_part_store: MediaStore) -> None:
    store = small_part_store

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)
        yield os.urandom(MiB)
        raise RuntimeError("producer died")

    key = audio_key("job-broken", "x.mp3")
    with pytest.raises(RuntimeError, match="producer died"):
        await store.upload_stream(key, broken())
    assert await store.head(key) is None
    assert await store.incomplete_uploads(key) == []


class PartWatch:
    """Wraps a store's ``upload_part``: how many were in flight at most; part ``fail_at``
    raises (a connection reset) once the parts before it are on their way."""

    def __init__(self, store: MediaStore, fail_at: int | None = None) -> None:
        self.in_flight = self.most = 0
        self.numbers: list[int] = []
        self._upload_part = store.client.upload_part
        self._fail_at = fail_at
        store.client.upload_part = self

    async def __call__(self, **kw: object) -> object:
        self.numbers.append(int(kw["PartNumber"]))  # type: ignore[call-overload]
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.05)  # a slow link: the next parts go out meanwhile
            if kw["PartNumber"] == self._fail_at:
                raise aiohttp.ServerDisconnectedError()
            return await self._upload_part(**kw)
        finally:
            self.in_flight -= 1


async def test_parts_go_out_a_few_at_once_and_land_in_order(
    small_part_store: MediaStore, tmp_path: Path
) -> None:
    store = small_part_store
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(27 * MiB))  # 5 parts of 5 MiB and one of 2
    watch = PartWatch(store)
    key = render_key("job-parts", "big.mp4")
    assert await store.upload_file(key, src) == 27 * MiB
    assert watch.most == PARTS_IN_FLIGHT and sorted(watch.numbers) == [1, 2, 3, 4, 5, 6]
    out = tmp_path / "back.bin"
    assert await store.download_file(key, out) == 27 * MiB
    assert _sha256_file(out) == _sha256_file(src)


async def test_a_part_that_fails_aborts_the_upload_and_stops_the_others(
    small_part_store: MediaStore, tmp_path: Path
) -> None:
    store = small_part_store
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(27 * MiB))
    watch = PartWatch(store, fail_at=2)
    key = render_key("job-parts-fail", "big.mp4")
    with pytest.raises(TransientError):
        await store.upload_file(key, src)
    # Parts past the failure were not all sent, and nothing is left behind.
    assert max(watch.numbers) < 6 and watch.in_flight == 0
    assert await store.head(key) is None
    assert await store.incomplete_uploads(key) == []


async def write_slowly(path: Path, data: bytes, patches: list[tuple[int, bytes]],
                       fail: bool = False) -> None:  # fmt: skip
    """A muxer's way: front to back a MiB at a time, then back to fill in ``patches``."""
    fh = await asyncio.to_thread(path.open, "wb")
    try:
        for at in range(0, len(data), MiB):
            await asyncio.to_thread(fh.write, data[at : at + MiB])
            await asyncio.to_thread(fh.flush)
            await asyncio.sleep(0.01)
        for offset, patch in patches:
            await asyncio.to_thread(fh.seek, offset)
            await asyncio.to_thread(fh.write, patch)
        if fail:
            raise RuntimeError("ffmpeg exited with 1")
    finally:
        await asyncio.to_thread(fh.close)


async def test_a_file_uploaded_while_written_is_stored_as_finished(
    small_part_store: MediaStore, tmp_path: Path
) -> None:
    store = small_part_store
    src = tmp_path / "merged.mp4"
    watch = PartWatch(store)
    # 4 parts of 5 MiB and one of 3; the size at the head and a byte in part 3 change last.
    patches = [(8, b"\x00\x00\x01\x00"), (12 * MiB + 5, b"late")]
    key = render_key("job-growing", "merged.mp4")
    size = await store.upload_growing(key, src, write_slowly(src, os.urandom(23 * MiB), patches))
    assert size == 23 * MiB
    assert sorted(set(watch.numbers)) == [1, 2, 3, 4, 5] and watch.numbers.count(3) == 2
    out = tmp_path / "back.mp4"
    assert await store.download_file(key, out) == 23 * MiB
    assert _sha256_file(out) == _sha256_file(src)
    info = await store.head(key)
    assert info is not None and info.content_type == "video/mp4"
    assert await store.incomplete_uploads(key) == []


async def test_an_upload_left_by_an_attempt_that_died_is_aborted_by_the_next(
    small_part_store: MediaStore, tmp_path: Path
) -> None:
    store = small_part_store
    key = render_key("job-growing-again", "merged.mp4")
    other = render_key("job-growing-again", "merged.mp4.part")  # same prefix, another key
    begun = {k: await store.client.create_multipart_upload(Bucket=store.bucket,
                                                            Key=store.full_key(k))
             for k in (key, other)}  # fmt: skip
    assert await store.incomplete_uploads(key) == sorted([key, other])
    src = tmp_path / "merged.mp4"
    await store.upload_growing(key, src, write_slowly(src, os.urandom(12 * MiB), []))
    assert await store.incomplete_uploads(key) == [other]
    assert (await store.head(key)) is not None
    await store.client.abort_multipart_upload(Bucket=store.bucket, Key=store.full_key(other),
                                              UploadId=begun[other]["UploadId"])  # fmt: skip


async def test_a_file_whose_writer_fails_is_not_stored(
    small_part_store: MediaStore, tmp_path: Path
) -> None:
    store = small_part_store
    src = tmp_path / "merged.mp4"
    watch = PartWatch(store)
    key = render_key("job-growing-fail", "merged.mp4")
    with pytest.raises(RuntimeError, match="exited with 1"):
        await store.upload_growing(key, src, write_slowly(src, os.urandom(23 * MiB), [], True))
    assert watch.numbers  # parts had gone up while it was written
    assert await store.head(key) is None
    assert await store.incomplete_uploads(key) == []


async def test_missing_objects(store: MediaStore, tmp_path: Path) -> None:
    key = audio_key("nope", "missing.mp3")
    assert await store.head(key) is None
    assert not await store.exists(key)
    with pytest.raises(ObjectNotFound) as err:
        await store.get_range(key, 0, 10)
    assert err.value.code == "not_found"
    assert isinstance(err.value, PermanentError)
    with pytest.raises(ObjectNotFound):
        await store.download_file(key, tmp_path / "missing.mp3")
    assert _names(tmp_path) == []
    with pytest.raises(ObjectNotFound):
        _ = [c async for c in store.iter_bytes(key)]


async def test_delete_prefix(store: MediaStore) -> None:
    for i in range(5):
        await store.upload_stream(audio_key("job-del", f"{i}.mp3"), _chunks([b"x" * i]))
    await store.upload_stream(audio_key("job-keep", "0.mp3"), _chunks([b"y"]))
    assert await store.delete_prefix("audio/job-del/") == 5
    assert not await store.exists(audio_key("job-del", "0.mp3"))
    assert await store.exists(audio_key("job-keep", "0.mp3"))
    with pytest.raises(ValueError):
        await store.delete_prefix("../")


async def test_unreachable_endpoint_is_transient() -> None:
    media = MediaStore(
        bucket="tapedeck",
        key_prefix="test-unreachable/",
        endpoint_url="http://127.0.0.1:9",
        access_key="x",
        secret_key="y",
        connect_timeout_s=1,
        max_attempts=1,
    )
    async with media:
        with pytest.raises(TransientError):
            await media.head(audio_key("job", "a.mp3"))
