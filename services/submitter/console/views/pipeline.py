"""The pipeline at a glance: per stage events in/out/failed over the last hour, consumer
lag per partition, stage latency, provider call and error rates, cache hit ratios and
the most requested clips. The figures refresh by htmx polling."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response

from services.ops.pipeline import LagRow, PipelineStats
from services.submitter.console.auth import OperatorSession
from services.submitter.console.ports import Ports
from services.submitter.console.render import render
from services.submitter.console.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)


@dataclass
class LagGroup:
    """One consumer group on one topic: its whole lag, and each partition's."""

    group: str
    topic: str
    total: int = 0
    partitions: list[tuple[int, int]] = field(default_factory=list)


def lag_groups(rows: Iterable[LagRow]) -> list[LagGroup]:
    """Per (group, topic), the most behind first; partitions in order."""
    groups: dict[tuple[str, str], LagGroup] = {}
    for row in rows:
        found = groups.setdefault((row.group, row.topic), LagGroup(row.group, row.topic))
        found.total += row.lag
        found.partitions.append((row.partition, row.lag))
    for found in groups.values():
        found.partitions.sort()
    return sorted(groups.values(), key=lambda g: (-g.total, g.group, g.topic))


def _page(request: Request, template: str, stats: PipelineStats, **extra: Any) -> Response:
    return render(request, template, stats=stats, lag=lag_groups(stats.lag), **extra)


@router.get("/pipeline", name="console_pipeline")
async def pipeline_page(request: Request, ports: Ports, _: OperatorSession) -> Response:
    stats = await ports.pipeline()
    return _page(request, "pipeline/page.html", stats, title="Pipeline", nav="pipeline")


@router.get("/pipeline/live", name="console_pipeline_live")
async def pipeline_live(request: Request, ports: Ports, _: OperatorSession) -> Response:
    return _page(request, "pipeline/_stats.html", await ports.pipeline())
