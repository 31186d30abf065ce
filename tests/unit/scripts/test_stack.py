"""scripts/stack.py: the pieces that run before any server exists."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.scripts import load_script

stack = load_script("stack")


def test_a_cluster_id_never_starts_like_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 encodes to "-" in URL-safe base64: the storage tool would read "-..." as a flag.
    draws: Iterator[uuid.UUID] = iter(
        [uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" + bytes(15))]
    )
    monkeypatch.setattr(stack.uuid, "uuid4", lambda: next(draws))
    cluster_id = stack.new_cluster_id()
    assert cluster_id == "AQAAAAAAAAAAAAAAAAAAAA"


def test_cluster_ids_are_22_url_safe_characters() -> None:
    ids = {stack.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
