"""The pipeline page shows every figure the ops layer gives, and polls for more."""

from __future__ import annotations

from services.ops.pipeline import LagRow
from services.submitter.console.views.pipeline import lag_groups
from tests.unit.submitter.console.conftest import Console


async def test_the_pipeline_figures(console: Console) -> None:
    r = await console.client.get("/console/pipeline", headers=console.signed_in())
    assert r.status_code == 200
    text = r.text
    assert 'data-stage="clip"' in text and ">120<" in text and "2.4 s" in text  # p95
    assert 'data-group="tapedeck-clipper"' in text and "<strong>7</strong>" in text  # lag
    assert '<span class="chip hot" title="partition 0">0<b>7</b></span>' in text
    assert "10.0 %" in text  # fal's error rate
    assert 'data-cache="clip"' in text and "75.0 %" in text and "90.0 %" in text
    assert "ep-42" in text and ">17<" in text
    assert 'hx-get="/console/pipeline/live" hx-trigger="every 10s"' in text
    live = await console.client.get("/console/pipeline/live", headers=console.signed_in())
    assert "<html" not in live.text and 'id="pipeline-stats"' in live.text


def test_lag_is_grouped_per_group_and_topic_most_behind_first() -> None:
    rows = [
        LagRow("merger", "t.merge", 1, 0),
        LagRow("clipper", "t.clip", 2, 5),
        LagRow("merger", "t.merge", 0, 0),
        LagRow("clipper", "t.clip", 0, 2),
    ]
    groups = lag_groups(rows)
    assert [(g.group, g.total, g.partitions) for g in groups] == [
        ("clipper", 7, [(0, 2), (2, 5)]),
        ("merger", 0, [(0, 0), (1, 0)]),
    ]
