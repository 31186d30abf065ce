"""What every benchmark module reports: figures, each next to its same-run baseline.

Every module of the suite exposes
``async def run(ctx: BenchContext, *, smoke: bool) -> list[Figure]``; ``bench.run`` calls
them in turn and prints one table. ``smoke=True`` means tiny inputs and one or two
repetitions, so the bench code runs inside the test suite and cannot rot.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from services.common.settings import Settings


@dataclass
class Figure:
    group: str  # "clip", "api", "stage", "merge", "e2e", "memory", "capacity"
    name: str  # e.g. "uncached 30 s clip, 3 h source"
    value: float
    unit: str  # median of repeated runs ("ms", "req/s", "x real time", "MB")
    baseline_name: str | None = None  # e.g. "floor: ranged GET + PUT of the same bytes"
    baseline: float | None = None
    # value / baseline (or baseline / value where bigger is better: say which in `note`)
    ratio: float | None = None
    target: str | None = None  # e.g. "<= 2x floor"
    met: bool | None = None
    note: str = ""


@dataclass
class BenchContext:
    settings: Settings  # isolated topic prefix / database / S3 prefix for this run
    cache_dir: Path  # generated inputs cached between runs ($STACK_DIR/bench)
    log: Callable[[str], None]


def median(values: Iterable[float]) -> float:
    """The median, or NaN for no values (a figure that could not be measured shows as such)."""
    data = list(values)
    return float(statistics.median(data)) if data else float("nan")


def ratio(a: float, b: float | None) -> float | None:
    """``a / b`` rounded for the table, or None when there is no baseline to divide by."""
    return round(a / b, 3) if b else None
