"""Which errors mean a server was out of reach (waited out) and which are the event's."""

from __future__ import annotations

import aiohttp
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, UnknownTopicOrPartitionError
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from pymongo.errors import (
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from services.common.errors import PermanentError, TransientError
from services.common.ffmpeg.runner import FFmpegError, FFmpegNetworkError, FFmpegResult, exited
from services.common.outage import is_outage


def caused(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    "exc",
    [
        ServerSelectionTimeoutError("127.0.0.1:27017: connection refused"),
        NetworkTimeout("timed out"),
        KafkaConnectionError("closed"),
        KafkaTimeoutError(),
        UnknownTopicOrPartitionError(),  # no leader while a broker restarts
        caused(TransientError("head k: ..."), EndpointConnectionError(endpoint_url="http://s3")),
        caused(TransientError("get k"), ReadTimeoutError(endpoint_url="http://s3")),
        caused(TransientError("put k"), aiohttp.ServerDisconnectedError()),
        FFmpegNetworkError("ffmpeg: Connection reset by peer"),
        caused(RuntimeError("wrapped"), caused(RuntimeError("twice"), NetworkTimeout("t"))),
    ],
)
def test_servers_out_of_reach(exc: Exception) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        DuplicateKeyError("E11000"),
        OperationFailure("bad query", code=2),
        TransientError("provider 503"),
        PermanentError("no such episode", code="episode_not_found"),
        FFmpegError("Invalid data found when processing input"),
        ValueError("a bug"),
    ],
)
def test_the_events_own_failures(exc: Exception) -> None:
    assert not is_outage(exc)


@pytest.mark.parametrize(
    ("stderr", "network"),
    [
        ("http://s3/x: Connection refused", True),
        ("tcp://127.0.0.1:7070: Connection reset by peer", True),
        ("Server returned 503 Service Unavailable", True),
        ("Stream ends prematurely at 1024, should be 4096", True),
        ("Server returned 404 Not Found", False),
        ("in.mp4: Invalid data found when processing input", False),
        # What ffprobe said when S3 (behind a proxy) closed the connection unanswered, and
        # when the object itself was a cut-off MP4: only the demuxer's line tells them apart.
        ("http://s3:7070/b/scene0.mp4?X-Amz-Signature=ab: End of file", True),
        (
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55f84e156180] error reading header\n"
            "http://s3:7070/b/cut.mp4?X-Amz-Signature=ab: End of file",
            False,
        ),
        ("in.mp4: End of file", False),
    ],
)
def test_a_failed_run_says_whether_storage_or_the_media_failed(stderr: str, network: bool) -> None:
    done = FFmpegResult(argv=("ffmpeg", "-i", "x"), returncode=1, stderr=stderr, elapsed_s=0.1)
    error = exited(["ffmpeg", "-i", "x"], done)
    assert isinstance(error, FFmpegNetworkError if network else FFmpegError)
    assert is_outage(error) is network
