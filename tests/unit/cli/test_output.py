"""Times and cells as tables show them, and JSON as scripts read it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.cli.output import cell, iso, print_json, when


def test_times_are_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert iso(datetime(2025, 1, 2, 5, 4, 5, tzinfo=plus2)) == "2025-01-02T03:04:05Z"
    assert iso(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05Z"  # naive is UTC
    assert iso(None) is None
    assert when("2025-01-02T03:04:05.123Z") == "2025-01-02 03:04:05"
    assert when(datetime(2025, 1, 2, 5, 4, 5, tzinfo=plus2)) == "2025-01-02 03:04:05"
    assert when(None) == "-" and when("not a time") == "not a time"
    assert cell(None) == "-" and cell("") == "-" and cell(0) == "0"


def test_json_output_is_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"at": datetime(2025, 1, 2, tzinfo=UTC), "raw": b"\xffok", "n": 1})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"at": "2025-01-02T00:00:00Z", "raw": "\\xffok", "n": 1}
