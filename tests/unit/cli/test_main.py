"""Every failure ends in one line on stderr and a non-zero status, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import sys

import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import ValidationError
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from services.cli import main, run
from services.cli.api import KEY_ENV
from services.cli.args import CliError
from services.cli.failures import describe
from services.common.settings import Settings


def command(exc: BaseException) -> argparse.Namespace:
    async def fails(args: argparse.Namespace) -> int:
        raise exc

    return argparse.Namespace(command=fails)


async def test_a_cli_error_is_its_line_and_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(command(CliError("no such thing", 2))) == 2
    assert capsys.readouterr().err == "tapedeck: no such thing\n"


async def test_unexpected_errors_do_not_show_their_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = "mongodb://admin:hunter2@db.internal:27017"
    assert await run(command(RuntimeError(secret))) == 1
    err = capsys.readouterr().err
    assert err == (
        "tapedeck: unexpected error (RuntimeError); run with TAPEDECK_DEBUG=1 for details\n"
    )
    with pytest.raises(RuntimeError):
        await run(command(RuntimeError(secret)), debug=True)


async def test_a_cancellation_escaping_a_library_is_a_failure_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run(command(asyncio.CancelledError())) == 1
    assert capsys.readouterr().err.startswith("tapedeck: unexpected error (CancelledError)")


def test_backend_failures_are_said_in_words() -> None:
    assert describe(ServerSelectionTimeoutError("mongodb://u:p@h")) == (
        "cannot reach MongoDB (MONGO_URL); is it running?"
    )
    assert describe(OperationFailure("auth failed for u:p")) == (
        "MongoDB refused the operation (OperationFailure)"
    )
    assert describe(KafkaConnectionError("h:9092")) == (
        "cannot reach Kafka (KAFKA_BOOTSTRAP); is it running?"
    )


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONGO_TIMEOUT_MS", "soon")
    with pytest.raises(ValidationError) as exc:
        Settings()
    line = describe(exc.value)
    assert line.startswith("invalid settings in the environment: MONGO_TIMEOUT_MS: ")
    assert "soon" not in line


def test_main_exits_with_the_status_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["jobs", "list"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (f"tapedeck: no API key: pass --key or set {KEY_ENV}\n")
    with pytest.raises(SystemExit) as exc:
        main(["jobs", "list", "--key", "td_x", "--api-url", "http://127.0.0.1:9"])
    assert exc.value.code == 1
    assert capsys.readouterr().err == "tapedeck: cannot reach the API at http://127.0.0.1:9\n"


def test_usage_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["jobs", "list", "--limit", "0"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "tapedeck: jobs list: argument --limit: must be > 0: '0' (see: tapedeck jobs list --help)\n"
    )
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("tapedeck: the following arguments are required")


def test_nothing_heavy_is_imported_to_parse_arguments() -> None:
    # A fresh interpreter: what building the parser loads, and no more.
    import subprocess

    code = (
        "import sys; from services.cli import parser; parser().parse_args(['jobs', 'list']);"
        "heavy = {'rich', 'httpx', 'aiokafka', 'pymongo', 'jsonschema', 'faust', 'pydantic'};"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
