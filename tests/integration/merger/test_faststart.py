"""An MP4's index moved to the front on the way to the bucket gives, byte for byte, what
ffmpeg's ``+faststart`` gives, whether the file is uploaded whole or while it is written."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from services.common.keys import render_key
from services.common.media_store import MediaStore
from services.merger.faststart import (
    NotMovable,
    moov_first,
    moov_first_or_as_written,
    top_level,
)
from services.merger.formats import BITEXACT

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def remux(src: Path, out: Path, muxer: str, *, faststart: bool, audio_only: bool = False) -> Path:
    flags = ["-movflags", "+faststart"] if faststart else []
    streams = ["-vn"] if audio_only else []
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *streams, "-c", "copy",
                    *flags, *BITEXACT, "-f", muxer, str(out)], check=True)  # fmt: skip
    return out


def make(path: Path, size: str, seconds: int) -> Path:
    """Intra-only MPEG-4 at the best quality: many bytes for few seconds."""
    subprocess.run([
        "ffmpeg", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=48000",
        "-c:v", "mpeg4", "-g", "1", "-q:v", "1", "-c:a", "aac", "-shortest",
        *BITEXACT, "-f", "mp4", str(path),
    ], check=True)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make(tmp_path_factory.mktemp("faststart") / "src.mp4", "320x240", 3)


def composed(path: Path) -> bytes:
    data = path.read_bytes()
    finish = moov_first(path, len(data))
    return finish.prefix + data[finish.skip : finish.end]


@pytest.mark.parametrize(("muxer", "audio_only"), [("mp4", False), ("mov", False), ("ipod", True)])
def test_the_moved_index_is_what_faststart_writes(
    source: Path, tmp_path: Path, muxer: str, audio_only: bool
) -> None:
    plain = remux(source, tmp_path / "plain", muxer, faststart=False, audio_only=audio_only)
    fast = remux(source, tmp_path / "fast", muxer, faststart=True, audio_only=audio_only)
    kinds = [kind for kind, _, _ in top_level(plain)]
    assert kinds[0] == b"ftyp" and kinds[-1] == b"moov"  # as ffmpeg writes it without
    assert composed(plain) == fast.read_bytes()
    assert [kind for kind, _, _ in top_level(fast)][:2] == [b"ftyp", b"moov"]


def test_a_file_laid_out_otherwise_is_stored_as_written(source: Path, tmp_path: Path) -> None:
    fast = remux(source, tmp_path / "fast.mp4", "mp4", faststart=True)
    size = fast.stat().st_size
    with pytest.raises(NotMovable, match=r"ftyp \.\.\. mdat \.\.\. moov"):
        moov_first(fast, size)
    finish = moov_first_or_as_written(fast, size)
    assert (finish.prefix, finish.skip, finish.end) == (b"", 0, size)


async def test_an_mp4_uploaded_while_written_is_stored_with_its_index_first(
    small_part_store: MediaStore, tmp_path: Path
) -> None:
    src = await asyncio.to_thread(make, tmp_path / "big.mp4", "1280x720", 8)
    plain = await asyncio.to_thread(remux, src, tmp_path / "plain.mp4", "mp4", faststart=False)
    fast = await asyncio.to_thread(remux, src, tmp_path / "fast.mp4", "mp4", faststart=True)
    data = plain.read_bytes()
    assert len(data) > 3 * 5 * MiB  # parts go up while it is "written"
    out = tmp_path / "out.mp4"
    sent: list[int] = []
    upload_part = small_part_store.client.upload_part

    async def watched(**kw: object) -> object:
        sent.append(int(kw["PartNumber"]))  # type: ignore[call-overload]
        return await upload_part(**kw)

    small_part_store.client.upload_part = watched

    async def write() -> None:
        # Front to back as the muxer does, and the mdat size filled in at the end.
        head = 64
        fh = await asyncio.to_thread(out.open, "wb")
        try:
            await asyncio.to_thread(fh.write, bytes(head))
            for at in range(head, len(data), MiB):
                await asyncio.to_thread(fh.write, data[at : at + MiB])
                await asyncio.sleep(0.01)
            await asyncio.to_thread(fh.seek, 0)
            await asyncio.to_thread(fh.write, data[:head])
        finally:
            await asyncio.to_thread(fh.close)

    key = render_key("job-faststart", "out.mp4")
    size = await small_part_store.upload_growing(key, out, write(), "video/mp4", moov_first)
    assert sent[:2] == [2, 3] and 1 in sent
    back = tmp_path / "back.mp4"
    assert await small_part_store.download_file(key, back) == size == fast.stat().st_size
    assert back.read_bytes() == fast.read_bytes()
    assert await small_part_store.incomplete_uploads(key) == []
