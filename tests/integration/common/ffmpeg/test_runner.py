from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services.common.ffmpeg import FFmpeg
from services.common.keys import audio_key
from services.common.media_store import MediaStore

if TYPE_CHECKING:
    from tests.integration.common.ffmpeg.conftest import MakeSine

pytestmark = pytest.mark.integration


async def test_ffmpeg_and_ffprobe_read_presigned_urls(
    store: MediaStore, tmp_path: Path, make_sine_mp3: MakeSine
) -> None:
    port = FFmpeg()
    mp3 = tmp_path / "tone.mp3"
    await make_sine_mp3(port, mp3, 2.0)
    key = audio_key("job-url", "tone.mp3")
    await store.upload_file(key, mp3)
    url = await store.presign_get(key, 300)

    probe = await port.probe(url)
    assert probe.codec == "mp3"
    assert abs((probe.duration_ms or 0) - 2000) <= 50

    cut = tmp_path / "cut.wav"
    result = await port.run(FFmpeg.input(url, ss=0.5, t=1).output(str(cut), acodec="pcm_s16le"))
    assert "-protocol_whitelist" in result.argv
    cut_probe = await port.probe(cut)
    assert cut_probe.codec == "pcm_s16le"
    assert abs((cut_probe.duration_ms or 0) - 1000) <= 50
