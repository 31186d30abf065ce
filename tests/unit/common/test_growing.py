"""Uploading a file while it is written: parts go up as the file grows, the first and the
tail once it is done, and a part the writer changed after it went up is sent again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import BinaryIO

import pytest

from services.common import growing
from services.common.errors import PermanentError
from services.common.growing import Finish, upload_while_written

PART = 16


class Sink:
    def __init__(self, fail_on: int | None = None) -> None:
        self.parts: dict[int, bytes] = {}
        self.order: list[int] = []
        self.sent_while_writing: list[int] = []
        self.writing = True
        self.completed = self.aborted = False
        self.fail_on = fail_on
        self.kept: list[int] = []

    async def send(self, number: int, body: bytes) -> None:
        await asyncio.sleep(0)
        if number == self.fail_on:
            raise OSError("connection reset")
        self.parts[number] = body
        self.order.append(number)
        if self.writing:
            self.sent_while_writing.append(number)

    async def settled(self) -> None:
        await asyncio.sleep(0)

    async def complete(self, numbers: list[int]) -> None:
        self.completed = True
        self.kept = numbers

    async def abort(self) -> None:
        self.aborted = True

    def stored(self) -> bytes:
        return b"".join(self.parts[n] for n in self.kept)


class Writer:
    """Appends ``chunks`` a little at a time, then writes ``patches`` (offset, bytes) over
    what it wrote, as a muxer fills in sizes at the end."""

    def __init__(self, path: Path, sink: Sink) -> None:
        self.path, self.sink = path, sink
        self.cancelled = False

    def _open(self) -> BinaryIO:
        return open(self.path, "wb")

    async def __call__(self, chunks: list[bytes], patches: Sequence[tuple[int, bytes]] = (),
                       fail: bool = False) -> None:  # fmt: skip
        try:
            with self._open() as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    fh.flush()
                    await asyncio.sleep(0.005)
                for offset, data in patches:
                    fh.seek(offset)
                    fh.write(data)
                if fail:
                    raise RuntimeError("ffmpeg exited with 1")
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.sink.writing = False


def upload(path: Path, sink: Sink, written: Awaitable[None], wholes: list[bytes]) -> Awaitable[int]:
    async def begin() -> Sink:
        return sink

    async def whole(chunks: AsyncIterator[bytes]) -> int:
        wholes.append(b"".join([c async for c in chunks]))
        return len(wholes[-1])

    return upload_while_written(path, written, part_size=PART, max_parts=100,
                                begin=begin, whole=whole, poll_s=0.001)  # fmt: skip


def content(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


async def test_parts_go_up_while_written_and_the_object_is_the_finished_file(
    tmp_path: Path,
) -> None:
    path, sink, wholes = tmp_path / "out.mp4", Sink(), list[bytes]()
    data = content(5 * PART + 7)
    # The head (a size field) and the middle of part 3 change once everything is written.
    patches = [(4, b"SIZE"), (2 * PART + 3, b"!!")]
    writer = Writer(path, sink)
    chunks = [data[i : i + 5] for i in range(0, len(data), 5)]
    size = await upload(path, sink, writer(chunks, patches), wholes)

    final = path.read_bytes()
    assert final != data and size == len(final) == 5 * PART + 7
    assert sink.completed and not sink.aborted and wholes == []
    assert sink.stored() == final
    # Parts 2 to 5 went up while the file was written; part 3 again after the change.
    assert sink.sent_while_writing == [2, 3, 4, 5]
    assert sink.order == [2, 3, 4, 5, 1, 6, 3] and sink.kept == [1, 2, 3, 4, 5, 6]


async def test_a_file_too_small_for_two_parts_is_uploaded_whole_once_written(
    tmp_path: Path,
) -> None:
    path, sink, wholes = tmp_path / "out.mp4", Sink(), list[bytes]()
    writer = Writer(path, sink)
    size = await upload(path, sink, writer([content(PART + 3)]), wholes)
    assert size == PART + 3 and wholes == [content(PART + 3)]
    assert sink.order == [] and not sink.completed


async def test_a_writer_that_fails_leaves_nothing_stored_and_its_error_is_raised(
    tmp_path: Path,
) -> None:
    path, sink, wholes = tmp_path / "out.mp4", Sink(), list[bytes]()
    writer = Writer(path, sink)
    data = content(4 * PART)
    with pytest.raises(RuntimeError, match="exited with 1"):
        await upload(path, sink, writer([data[: PART * 3], data[PART * 3 :]], fail=True), wholes)
    assert sink.aborted and not sink.completed and wholes == []


async def test_a_failed_part_stops_the_writer_and_aborts_the_upload(tmp_path: Path) -> None:
    path, sink, wholes = tmp_path / "out.mp4", Sink(fail_on=3), list[bytes]()
    writer = Writer(path, sink)
    data = content(40 * PART)
    chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
    with pytest.raises(OSError, match="connection reset"):
        await upload(path, sink, writer(chunks), wholes)
    assert writer.cancelled and sink.aborted and not sink.completed


async def test_a_file_cut_short_behind_the_parts_sent_is_uploaded_whole(tmp_path: Path) -> None:
    path, sink, wholes = tmp_path / "out.mp4", Sink(), list[bytes]()

    async def shrinking() -> None:
        path.write_bytes(content(4 * PART))
        await asyncio.sleep(0.05)  # parts 2 and 3 go up meanwhile
        path.write_bytes(content(PART + 1))

    size = await upload(path, sink, shrinking(), wholes)
    assert sink.order[:2] == [2, 3] and sink.aborted and not sink.completed
    assert size == PART + 1 and wholes == [content(PART + 1)]


async def test_a_finished_file_recomposed_keeps_the_parts_before_its_new_end(
    tmp_path: Path,
) -> None:
    # As an MP4's index moves to the front: 3 bytes of head, then a 20-byte index that
    # was written last (inside part 5) goes between the head and the rest.
    path, sink = tmp_path / "out.mp4", Sink()
    data = content(4 * PART + 10) + b"I" * 20
    end = 4 * PART + 10

    def finish(p: Path, size: int) -> Finish:
        assert size == len(data) and p == path
        return Finish(prefix=data[:3] + data[end:], skip=3, end=end)

    writer = Writer(path, sink)
    chunks = [data[i : i + 4] for i in range(0, len(data), 4)]

    async def begin() -> Sink:
        return sink

    async def whole(chunks: AsyncIterator[bytes]) -> int:
        raise AssertionError("not uploaded whole")

    size = await upload_while_written(path, writer(chunks), part_size=PART, max_parts=100,
                                      begin=begin, whole=whole, finish=finish,
                                      poll_s=0.001)  # fmt: skip
    expected = data[:3] + data[end:] + data[3:end]
    assert size == len(expected) and sink.stored() == expected
    # Part 5 (bytes 64-79) went up while written, but the index ends inside it: the tail
    # takes its number with what the object keeps of it.
    assert 5 in sink.sent_while_writing and sink.kept == [1, 2, 3, 4, 5]
    assert sink.parts[5] == data[4 * PART : end]


@pytest.mark.parametrize("size", [5 * PART, PART], ids=["in-parts", "whole"])
async def test_a_finished_file_that_fails_its_check_is_not_stored(
    tmp_path: Path, size: int
) -> None:
    path, sink, wholes = tmp_path / "out.mp4", Sink(), list[bytes]()
    writer = Writer(path, sink)
    data = content(size)

    async def check() -> None:
        assert not sink.writing  # the file is finished when it is checked
        raise ValueError("the merged file is unreadable")

    async def begin() -> Sink:
        return sink

    async def whole(chunks: AsyncIterator[bytes]) -> int:
        wholes.append(b"".join([c async for c in chunks]))
        return len(wholes[-1])

    with pytest.raises(ValueError, match="unreadable"):
        await upload_while_written(path, writer([data[i : i + 8] for i in range(0, size, 8)]),
                                   part_size=PART, max_parts=100, begin=begin, whole=whole,
                                   check=check, poll_s=0.001)  # fmt: skip
    assert not sink.completed and wholes == []
    assert sink.aborted == (size > 2 * PART)  # parts had gone up: the upload is aborted


async def test_parts_grow_as_the_file_does_and_the_part_limit_keeps_a_number_for_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(growing, "PARTS_PER_SIZE", 2)
    path, sink, wholes = tmp_path / "out.mp4", Sink(), list[bytes]()
    data = content(PART * 12 + 5)
    writer = Writer(path, sink)
    size = await upload(path, sink, writer([data[i : i + 8] for i in range(0, len(data), 8)]),
                        wholes)  # fmt: skip
    assert size == len(data) and sink.stored() == data
    # Part 1 and 2 at the first size, 3 and 4 at twice it, 5 at four times; then the tail.
    lengths = [len(sink.parts[n]) for n in sink.kept]
    assert lengths == [PART, PART, 2 * PART, 2 * PART, 4 * PART, 2 * PART + 5]

    path, sink = tmp_path / "big.mp4", Sink()
    writer = Writer(path, sink)

    async def begin() -> Sink:
        return sink

    async def whole(chunks: AsyncIterator[bytes]) -> int:
        raise AssertionError("not uploaded whole")

    with pytest.raises(PermanentError, match="more than 4 parts"):
        await upload_while_written(path, writer([data[i : i + 8] for i in range(0, len(data), 8)]),
                                   part_size=PART, max_parts=4, begin=begin, whole=whole,
                                   poll_s=0.001)  # fmt: skip
    assert sink.aborted and max(sink.order) <= 3
