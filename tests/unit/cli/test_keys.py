"""``tapedeck keys create``: what it refuses before touching the key store."""

from __future__ import annotations

import pytest

from tests.unit.cli.cli import tapedeck


async def test_an_operator_key_needs_a_name_and_a_tenant_key_a_tenant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await tapedeck("keys", "create", "--operator") == 2
    assert capsys.readouterr().err == "tapedeck: an operator key needs --name (who holds it)\n"
    assert await tapedeck("keys", "create", "--name", "alice") == 2
    assert capsys.readouterr().err == (
        "tapedeck: --tenant is required (or --operator for an operator key)\n"
    )
