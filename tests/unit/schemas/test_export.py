"""Generated JSON Schema and example files stay in step with the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import export
from schemas.example_events import EXAMPLES
from schemas.registry import EVENT_MODELS, decode_event, model_for

pytestmark = pytest.mark.unit


def test_committed_files_are_current() -> None:
    problems = export.check()
    assert problems == [], "stale generated files; run: python -m schemas.export\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize("key", sorted(EVENT_MODELS), ids=[k[0] for k in sorted(EVENT_MODELS)])
def test_example_files_validate(key: tuple[str, int]) -> None:
    event_type, version = key
    path = export.PACKAGE_DIR / "examples" / f"{export.file_stem(event_type, version)}.json"
    raw = path.read_bytes()
    event = model_for(event_type, version).model_validate_json(raw)
    assert event == EXAMPLES[key]
    assert decode_event(raw) == event


@pytest.mark.parametrize("key", sorted(EVENT_MODELS), ids=[k[0] for k in sorted(EVENT_MODELS)])
def test_schema_files_are_canonical(key: tuple[str, int]) -> None:
    event_type, version = key
    path = export.PACKAGE_DIR / "json" / f"{export.file_stem(event_type, version)}.schema.json"
    text = path.read_text(encoding="utf-8")
    schema = json.loads(text)
    assert text == json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert schema["$id"] == f"urn:tapedeck:event:{event_type}:v{version}"
    assert schema["title"] == f"{event_type} v{version}"
    assert schema["additionalProperties"] is False
    assert {"event_type", "schema_version"} <= set(schema["required"])
    assert schema["properties"]["event_type"]["const"] == event_type


def test_check_reports_stale_missing_and_extra(tmp_path: Path) -> None:
    assert export.check(tmp_path)  # nothing there yet
    assert export.write(tmp_path)
    assert export.check(tmp_path) == []
    assert export.main(["--check", "--root", str(tmp_path)]) == 0

    (tmp_path / "json" / "clip.ready.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "examples" / "clip.failed.json").unlink()
    (tmp_path / "examples" / "clip.exploded.json").write_text("{}\n", encoding="utf-8")
    assert sorted(export.check(tmp_path)) == [
        "extra: examples/clip.exploded.json",
        "missing: examples/clip.failed.json",
        "stale: json/clip.ready.schema.json",
    ]
    assert export.main(["--check", "--root", str(tmp_path)]) == 1

    export.write(tmp_path)
    assert export.check(tmp_path) == []
