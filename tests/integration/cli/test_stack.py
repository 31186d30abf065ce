"""``tapedeck stack status`` through this checkout's scripts/stack, on the running stack
(only ``status``: the stack is shared and stays up)."""

from __future__ import annotations

import json

from services.common.settings import Settings
from tests.integration.cli.command import tapedeck


async def test_status_reports_the_running_stack(settings: Settings) -> None:
    code, out, err = await tapedeck(settings, "stack", "status", "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"kafka", "mongo", "s3"}
    assert all(row["ready"] for row in rows.values())
    # A pid only for servers this checkout's script started (another may have started them).
    assert all(row["pid"] is None or isinstance(row["pid"], int) for row in rows.values())
    assert rows["kafka"]["endpoint"] == settings.kafka_bootstrap.split(",")[0]

    code, out, _ = await tapedeck(settings, "stack", "status")
    assert code == 0 and out.count("ready") == 3
