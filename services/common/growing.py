"""Upload a file while another process is still writing it.

A muxer writes its output front to back and, once done, goes back to fill in what it
could not know at the start (the MP4 ``mdat`` size, Matroska's segment size and
duration). So the parts after the first go up as soon as they are written, the first
part and the tail once the writer is done; and every part sent early is read again then
and compared with what went up: a part the writer changed afterwards is sent again. The
object is the finished file byte for byte whatever the writer went back to, and what is
left to wait for after the writer is the first part, the tail and the re-read.

The object may also be the file recomposed (see :class:`Finish`): an MP4's index moved
to the front (``services/merger/faststart.py``) is a new first part and a shorter tail.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from services.common.errors import PermanentError

POLL_S: Final = 0.05
# The file's size is not known while it is written: parts double in size every this many,
# so the part-count limit allows 1,023 times what it would at the first size.
PARTS_PER_SIZE: Final = 1000
_MiB: Final = 1024 * 1024


@dataclass(frozen=True)
class Finish:
    """What the object is, once the file is written: ``prefix``, then the file's bytes
    from ``skip`` to ``end``."""

    prefix: bytes
    skip: int
    end: int

    @classmethod
    def whole(cls, size: int) -> Finish:
        return cls(b"", 0, size)

    @property
    def size(self) -> int:
        return len(self.prefix) + self.end - self.skip


# The finished file's size in, what to store out (it may read the file).
Finisher = Callable[[Path, int], Finish]


class PartSink(Protocol):
    """One multipart upload: ``send`` returns once the part is on its way (a bounded
    number at once), raising what an earlier part raised."""

    async def send(self, number: int, body: bytes) -> None: ...

    async def settled(self) -> None: ...

    async def complete(self, numbers: list[int]) -> None: ...

    async def abort(self) -> None: ...


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:  # the writer has not opened it yet
        return 0


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _read_and_hash(path: Path, offset: int, length: int) -> tuple[bytes, bytes]:
    body = _read(path, offset, length)
    return body, hashlib.sha256(body).digest()


async def _chunks(path: Path, finish: Finish, chunk: int) -> AsyncIterator[bytes]:
    if finish.prefix:
        yield finish.prefix
    offset = finish.skip
    while offset < finish.end:
        body = await asyncio.to_thread(_read, path, offset, min(chunk, finish.end - offset))
        if not body:
            return
        yield body
        offset += len(body)


# A part sent while the file was written: where it starts, its length, its bytes' sha-256.
_Sent = tuple[int, int, bytes]


def _changed(path: Path, sent: dict[int, _Sent]) -> list[int]:
    """The parts whose bytes on disk are no longer what was sent (read a MiB at a time:
    this runs beside the last sends, whose parts are held in memory already)."""
    out = []
    with open(path, "rb") as fh:
        for number, (offset, length, digest) in sorted(sent.items()):
            fh.seek(offset)
            hashed, left = hashlib.sha256(), length
            while left and (block := fh.read(min(left, _MiB))):
                hashed.update(block)
                left -= len(block)
            if hashed.digest() != digest:
                out.append(number)
    return out


async def upload_while_written(
    path: Path,
    written: Awaitable[None],
    *,
    part_size: int,
    max_parts: int,
    begin: Callable[[], Awaitable[PartSink]],
    whole: Callable[[AsyncIterator[bytes]], Awaitable[int]],
    finish: Finisher | None = None,
    check: Callable[[], Awaitable[None]] | None = None,
    poll_s: float = POLL_S,
) -> int:
    """Upload ``path`` while ``written`` (the writer) runs; the object's size.

    ``begin`` starts the multipart upload (once the file has two parts' worth), ``whole``
    uploads the object from a stream of its bytes in one go (a file too small to have
    sent any part, or cut short behind the parts sent); ``finish`` says what the object
    is once the file is written (by default, the file); ``check`` runs then (a probe of
    the finished file) beside the last sends, and the object is completed only if it
    passes. When the writer or the check raises, the upload is aborted and its error
    raised; when the upload fails, or this is cancelled, the writer is cancelled too.
    """
    writer = asyncio.ensure_future(written)
    checked: asyncio.Future[None] | None = None
    sink: PartSink | None = None
    sent: dict[int, _Sent] = {}
    # Part 1 is held back: it is where writers go back to.
    offset, number = part_size, 1

    def length_of(number: int) -> int:
        return part_size << ((number - 1) // PARTS_PER_SIZE)

    try:
        while True:
            finished = writer.done()
            size = _size(path)
            while size - offset >= (length := length_of(number + 1)):
                # One number is kept for the tail.
                if number + 1 >= max_parts:
                    raise PermanentError(f"upload needs more than {max_parts} parts",
                                         code="too_large")  # fmt: skip
                if sink is None:
                    sink = await begin()
                body, digest = await asyncio.to_thread(_read_and_hash, path, offset, length)
                number += 1
                sent[number] = (offset, length, digest)
                await sink.send(number, body)
                offset += length
            if finished:
                break
            await asyncio.wait({writer}, timeout=poll_s)
        writer.result()
        if check is not None:
            checked = asyncio.ensure_future(check())
        size = _size(path)
        # The finisher reads the file (an MP4's index: megabytes): not on the event loop.
        done = await asyncio.to_thread(finish, path, size) if finish else Finish.whole(size)
        # The parts sent that the object keeps as they are: those before its end.
        kept = {n: at for n, at in sent.items() if at[0] + at[1] <= done.end}
        if sink is None or not kept or done.skip > part_size:
            if sink is not None:
                await sink.abort()
                sink = None
            if checked is not None:
                await checked
            return await whole(_chunks(path, done, part_size))
        last = max(kept)
        numbers = [1, *sorted(kept)]
        resume = kept[last][0] + kept[last][1]
        # The re-read runs beside the last sends: neither waits for the other.
        checking = asyncio.ensure_future(asyncio.to_thread(_changed, path, kept))
        try:
            if max(sent) > last:
                # The tail takes over the number of a part sent past the object's end:
                # that part's sending must land before the tail's.
                await sink.settled()
            head = await asyncio.to_thread(_read, path, done.skip, part_size - done.skip)
            await sink.send(1, done.prefix + head)
            if done.end > resume:
                tail = await asyncio.to_thread(_read, path, resume, done.end - resume)
                await sink.send(last + 1, tail)
                numbers.append(last + 1)
            changed = await checking
        finally:
            checking.cancel()
        if changed:
            # A part's first sending must land before its second.
            await sink.settled()
            for n in changed:
                at, length, _ = kept[n]
                await sink.send(n, await asyncio.to_thread(_read, path, at, length))
        if checked is not None:
            await checked
        await sink.complete(numbers)
        return done.size
    except BaseException:
        for task in (writer, checked):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(writer, *([checked] if checked else []), return_exceptions=True)
        if sink is not None:
            await asyncio.shield(sink.abort())
        raise
