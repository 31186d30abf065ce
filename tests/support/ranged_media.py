"""MemoryMedia with the ranged reads the clipper's cutter streams from, answering like the
real store: a missing key is ``not_found``, a range that starts past the end is
``invalid_range``, and one that runs past it is cut short."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from services.common.errors import PermanentError
from tests.support.fakes import MemoryMedia


class RangedMemoryMedia(MemoryMedia):
    """``gets`` lists every ranged read as (key, first byte, last byte asked for)."""

    def __init__(self, objects: dict[str, bytes] | None = None, chunk_size: int = 4096) -> None:
        super().__init__(objects)
        self.gets: list[tuple[str, int, int | None]] = []
        self.bytes_read = 0
        self._chunk = chunk_size

    def _range(self, key: str, start: int, end: int | None) -> bytes:
        self.gets.append((key, start, end))
        data = self.objects.get(key)
        if data is None:
            raise PermanentError(f"get {key}: not found", code="not_found")
        if start >= len(data):
            raise PermanentError(f"get {key}: InvalidRange", code="invalid_range")
        part = data[start : None if end is None else end + 1]
        self.bytes_read += len(part)
        return part

    async def iter_bytes(
        self, key: str, start: int | None = None, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        part = self._range(key, start or 0, end)
        for i in range(0, len(part), self._chunk):
            yield part[i : i + self._chunk]

    async def get_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        return self._range(key, start, end_inclusive)
