"""``tapedeck stack`` runs the checkout's scripts/stack, and says clearly when there is
none (a tapedeck installed from a package)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import stack
from services.cli.stack import find_checkout, parse_status
from tests.unit.cli.cli import tapedeck

STATUS = """kafka  127.0.0.1:9092   pid=1234     ready
mongo  127.0.0.1:27017  pid=-        stopped
s3     127.0.0.1:7070   pid=99       starting/unhealthy
"""


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout whose scripts/stack records its arguments and plays ``status``."""
    (tmp_path / "pyproject.toml").write_text("")
    script = tmp_path / "scripts" / "stack"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{tmp_path}/calls"\n'
        'if [ "$1" = status ]; then printf "%s" "$STATUS"; exit "${RC:-0}"; fi\n'
        'exit "${RC:-0}"\n'
    )
    script.chmod(0o755)
    monkeypatch.setattr(stack, "package_root", lambda: tmp_path)
    monkeypatch.setenv("STATUS", STATUS)
    return tmp_path


def test_an_installed_package_is_no_checkout(tmp_path: Path) -> None:
    from services.cli.args import CliError

    with pytest.raises(CliError) as exc:
        find_checkout(tmp_path)
    assert "needs a source checkout" in exc.value.message
    assert "pip install -e <checkout>" in exc.value.message
    # This tree is one.
    assert find_checkout(Path(stack.__file__).resolve().parents[2]).name == "stack"


async def test_actions_run_the_script_and_pass_its_status(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await tapedeck("stack", "up") == 0
    assert await tapedeck("stack", "down") == 0
    monkeypatch.setenv("RC", "3")
    assert await tapedeck("stack", "up") == 3
    assert capsys.readouterr().err == "tapedeck: stack up failed (exit 3)\n"
    assert (checkout / "calls").read_text().split() == ["up", "down", "up"]


async def test_status_as_json(
    checkout: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RC", "1")
    assert await tapedeck("stack", "status", "--json") == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == parse_status(STATUS)
    assert err == "tapedeck: the stack is not (all) ready\n"
    assert parse_status(STATUS) == [
        {
            "name": "kafka",
            "endpoint": "127.0.0.1:9092",
            "pid": 1234,
            "state": "ready",
            "ready": True,
        },
        {
            "name": "mongo",
            "endpoint": "127.0.0.1:27017",
            "pid": None,
            "state": "stopped",
            "ready": False,
        },
        {
            "name": "s3",
            "endpoint": "127.0.0.1:7070",
            "pid": 99,
            "state": "starting/unhealthy",
            "ready": False,
        },
    ]


async def test_without_a_checkout_it_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stack, "package_root", lambda: tmp_path / "site-packages")
    assert await tapedeck("stack", "status") == 1
    err = capsys.readouterr().err
    assert err.startswith("tapedeck: tapedeck stack needs a source checkout of Tapedeck")
    assert err.count("\n") == 1
