"""How commands print: rich tables for people, one JSON document for scripts.

Consoles are made per call (never at import) so tests and pipes get what they expect:
stdout carries the answer, stderr the notes and progress."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    # Wide when not a terminal, so a table piped to a file keeps whole ids and names.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 200
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def print_json(document: Any) -> None:
    print(json.dumps(document, default=_jsonable, ensure_ascii=False, sort_keys=False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bytes):
        return value.decode(errors="backslashreplace")
    raise TypeError(f"not JSON: {type(value).__name__}")


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # MongoDB hands back naive UTC datetimes.
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def when(value: Any) -> str:
    """A time for a table cell: ``2025-01-02 03:04:05`` (UTC), or ``-``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return when(value)
    return str(value)


STATUS_STYLE = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
    "RUNNING": "cyan",
    "PENDING": "dim",
    "pending": "yellow",
    "replayed": "green",
    "discarded": "dim",
}


def status_text(status: Any) -> str:
    text = cell(status)
    style = STATUS_STYLE.get(text)
    return markup(f"[{style}]{escape(text)}[/]" if style else escape(text))


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> Table:
    from rich.table import Table

    out = Table(*columns, title=title, title_justify="left", show_lines=False)
    for row in rows:
        out.add_row(*(v if isinstance(v, _Markup) else escape(cell(v)) for v in row))
    return out


def fields(pairs: Mapping[str, Any]) -> Table:
    """Name/value lines (``show`` commands), values escaped."""
    from rich.table import Table

    out = Table(show_header=False, box=None, pad_edge=False)
    out.add_column(style="bold")
    out.add_column()
    for name, value in pairs.items():
        out.add_row(name, value if isinstance(value, _Markup) else escape(cell(value)))
    return out


class _Markup(str):
    """A value already in rich markup (escaped where it holds data)."""


def markup(text: str) -> str:
    return _Markup(text)
