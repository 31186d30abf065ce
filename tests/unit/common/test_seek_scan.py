from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import PermanentError, TransientError
from services.common.ffmpeg import FFmpeg, FFmpegTimeout
from services.common.seek_scan import PacketScan, packet_index_argv

pytestmark = pytest.mark.unit

# ffprobe's CSV for a LAME-tagged MP3: the first and last packets carry the gapless info.
LINES = [
    "0.000000,0.026122,227,Skip Samples,1105,0,0,0\n",
    "\n",
    "0.026122,0.026122,853\n",
    "0.052245,0.026122,1270\n",
    "N/A,0.026122,1700\n",
    "1.018776,0.026122,5014,Skip Samples,0,875,0,0\n",
]


def test_scan_keeps_one_packet_per_step_and_the_gapless_info() -> None:
    scan = PacketScan(step_ms=1000)
    for line in LINES:
        scan.feed(line)
    index = scan.index()
    assert index.times_ms == [0.0, 1018.776]
    assert index.offsets == [227, 5014]
    assert index.end_ms == pytest.approx(1044.898)
    assert (index.skip_samples, index.discard_samples) == (1105, 875)


def test_scan_keeps_the_first_packet_at_or_after_each_whole_step() -> None:
    # A fixed grid, not "a step after the last one kept": the entry for any time is at
    # a place computed from the time alone.
    scan = PacketScan(step_ms=1000)
    for t_ms, pos in ((0, 10), (999.9, 20), (1000.5, 30), (1999, 40), (2000, 50), (2500, 60)):
        scan.feed(f"{t_ms / 1000:.6f},0.026122,{pos}\n")
    assert scan.index().times_ms == [0.0, 1000.5, 2000.0]
    assert scan.index().offsets == [10, 30, 50]


def test_scan_every_packet_exactly() -> None:
    scan = PacketScan(step_ms=0)
    for line in LINES:
        scan.feed(line)
    assert scan.index().times_ms == [0.0, 26.122, 52.245, 1018.776]
    assert scan.index().offsets == [227, 853, 1270, 5014]


def test_argv_reads_local_names_as_files() -> None:
    argv = packet_index_argv("-x.mp3", "/opt/ffprobe")
    assert argv[0] == "/opt/ffprobe"
    assert argv[-1].startswith("/")


@pytest.mark.parametrize("failure", ["missing_binary", "timeout"])
async def test_packet_index_fails_like_probe(failure: str, tmp_path: Path) -> None:
    media = tmp_path / "a.mp3"
    media.write_bytes(b"\xff\xfb" * 100)
    if failure == "missing_binary":
        ffprobe = tmp_path / "no-such-ffprobe"
        expected: type[Exception] = PermanentError
    else:
        ffprobe = tmp_path / "ffprobe"
        ffprobe.write_text("#!/bin/sh\nexec sleep 30\n")
        ffprobe.chmod(0o755)
        expected = FFmpegTimeout
    port = FFmpeg(ffprobe_bin=str(ffprobe), timeout_s=0.5)

    with pytest.raises(expected) as probed:
        await port.probe(media)
    with pytest.raises(expected) as scanned:
        await port.packet_index(media)

    assert type(scanned.value) is type(probed.value)
    if failure == "missing_binary":
        assert isinstance(scanned.value, PermanentError)
        assert isinstance(probed.value, PermanentError)
        assert scanned.value.code == probed.value.code == "ffmpeg_unavailable"
    else:
        assert isinstance(scanned.value, FFmpegTimeout)
        assert isinstance(probed.value, FFmpegTimeout)
        assert isinstance(scanned.value, TransientError)  # retried, not internal_error
        assert scanned.value.timeout_s == probed.value.timeout_s == 0.5
