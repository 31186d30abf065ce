"""Write (or check) the JSON Schema and example files for every event.

    python -m schemas.export          # regenerate schemas/json and schemas/examples
    python -m schemas.export --check  # exit 1 if any file is stale, missing or extra

The files are generated, never edited by hand; CI runs ``--check``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.envelope import Event
from schemas.example_events import EXAMPLES
from schemas.registry import EVENT_MODELS

PACKAGE_DIR = Path(__file__).resolve().parent
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def file_stem(event_type: str, version: int) -> str:
    # Version 1 keeps the plain name; later versions sit beside it, so a file
    # a consumer pinned never changes meaning.
    return event_type if version == 1 else f"{event_type}.v{version}"


def schema_id(event_type: str, version: int) -> str:
    return f"urn:tapedeck:event:{event_type}:v{version}"


def json_schema(model: type[Event], event_type: str, version: int) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = schema_id(event_type, version)
    schema["title"] = f"{event_type} v{version}"
    return schema


def _dump(document: Any, *, sort_keys: bool) -> str:
    return json.dumps(document, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    """Every generated file, relative to the package directory, with its content."""
    files: dict[Path, str] = {}
    for (event_type, version), model in sorted(EVENT_MODELS.items()):
        stem = file_stem(event_type, version)
        schema = json_schema(model, event_type, version)
        files[Path("json") / f"{stem}.schema.json"] = _dump(schema, sort_keys=True)
        example = EXAMPLES[(event_type, version)]
        # Field order, not sorted: the envelope first reads better in a message.
        files[Path("examples") / f"{stem}.json"] = _dump(
            example.model_dump(mode="json"), sort_keys=False
        )
    return files


def write(root: Path = PACKAGE_DIR) -> list[Path]:
    """Bring the files under ``root`` up to date; returns the ones changed."""
    expected = render()
    changed: list[Path] = []
    for relative, content in expected.items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            changed.append(relative)
    for relative in _extra_files(root, expected):
        (root / relative).unlink()
        changed.append(relative)
    return changed


def check(root: Path = PACKAGE_DIR) -> list[str]:
    """Problems with the files under ``root``, one line each; empty when current."""
    expected = render()
    problems: list[str] = []
    for relative, content in expected.items():
        path = root / relative
        if not path.is_file():
            problems.append(f"missing: {relative}")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"stale: {relative}")
    problems.extend(f"extra: {relative}" for relative in _extra_files(root, expected))
    return problems


def _extra_files(root: Path, expected: dict[Path, str]) -> list[Path]:
    found = {
        path.relative_to(root)
        for directory in ("json", "examples")
        for path in (root / directory).glob("*.json")
    }
    return sorted(found - expected.keys())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="verify only, write nothing")
    parser.add_argument("--root", type=Path, default=PACKAGE_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.root)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run: python -m schemas.export", file=sys.stderr)
            return 1
        return 0
    for relative in write(args.root):
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
