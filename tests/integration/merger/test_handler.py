"""The merge handler on the real media store and ffmpeg: what each operation makes,
checked by measuring the output (packet hashes, durations, loudness, level at the joins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.merge import MergeCompleted, MergeRequested
from schemas.names import Stage
from services.common.media_store import MediaStore
from services.merger.handler import MergeHandler
from tests.integration.merger import media
from tests.integration.merger.conftest import Clips, handler_for, merge_request, put
from tests.support.fakes import context_for

FRAME_25 = 0.04


async def run(handler: MergeHandler, event: MergeRequested) -> MergeCompleted:
    (out,) = await handler(event, context_for(event, Stage.MERGE, deadline_s=600))
    assert isinstance(out, MergeCompleted)
    return out


async def fetch(store: MediaStore, key: str, tmp_path: Path) -> Path:
    path = tmp_path / key.replace("/", "_")
    await store.download_file(key, path)
    return path


async def test_compatible_videos_are_joined_by_stream_copy(
    store: MediaStore, clips: Clips, tmp_path: Path
) -> None:
    # A key that would break a hand-written concat list: the list never sees it.
    odd = "in/it's a 'clip' file '/etc/passwd'.mp4"
    await put(store, {"in/a.mp4": clips.a, odd: clips.b})
    done = await run(handler_for(store), merge_request("concat_video", ["in/a.mp4", odd],
                                                       "out/joined.mp4"))  # fmt: skip
    out = await fetch(store, "out/joined.mp4", tmp_path)
    assert done.copied and done.s3_key == "out/joined.mp4"
    assert done.size_bytes == out.stat().st_size
    assert abs(done.duration_ms - 5000) <= 40
    # No encoder ran: the output's video packets are the inputs' packets, byte for byte.
    assert media.packets(out) == media.packets(clips.a) + media.packets(clips.b)
    # Streamable: the index before the data, moved there on the way to the bucket.
    assert media.top_boxes(out)[:2] == [b"ftyp", b"moov"]
    assert abs(media.stream_seconds(out, "video") - 5.0) <= FRAME_25


async def test_different_videos_are_normalised_and_joined_in_one_run(
    store: MediaStore, clips: Clips, tmp_path: Path
) -> None:
    await put(store, {"in/a.mp4": clips.a, "in/small.mp4": clips.small, "in/fast.mp4": clips.fast})
    event = merge_request("concat_video", ["in/a.mp4", "in/small.mp4", "in/fast.mp4"],
                          "out/normalised.mp4")  # fmt: skip
    done = await run(handler_for(store), event)
    assert not done.copied
    out = await fetch(store, "out/normalised.mp4", tmp_path)
    streams = media.probe(out)["streams"]
    assert isinstance(streams, list)
    v = next(s for s in streams if s["codec_type"] == "video")
    a = next(s for s in streams if s["codec_type"] == "audio")
    # The largest picture; the highest frame rate; a silent track where input 2 had none.
    assert (v["width"], v["height"], v["r_frame_rate"]) == (320, 240, "30/1")
    assert (a["codec_name"], int(a["sample_rate"]), a["channels"]) == ("aac", 48000, 2)
    frame = 1 / 30
    assert abs(media.stream_seconds(out, "video") - 5.0) <= frame + 1e-6
    assert abs(done.duration_ms / 1000 - 5.0) <= 0.05
    # The silent stretch is silent, the others are not.
    assert max(media.rms_windows(out, 2.3, 3.7)) < 0.001
    assert min(media.rms_windows(out, 0.3, 1.7)) > 0.01


async def test_three_10s_tones_crossfaded_last_28s_without_a_gap(
    store: MediaStore, clips: Clips, tmp_path: Path
) -> None:
    keys = [f"seg/{n}.wav" for n in range(3)]
    await put(store, dict(zip(keys, clips.tones, strict=True)))
    done = await run(handler_for(store), merge_request("crossfade_audio", keys, "out/track.wav"))
    out = await fetch(store, "out/track.wav", tmp_path)
    assert not done.copied
    assert abs(media.stream_seconds(out, "audio") - 28.0) <= 0.025
    assert abs(done.duration_ms - 28_000) <= 25
    steady = min(media.rms_windows(out, 3, 5))
    for join_start in (9.0, 18.0):  # the two overlaps
        window = media.rms_windows(out, join_start - 0.5, join_start + 1.5)
        assert min(window) > 0.25 * steady, (join_start, min(window), steady)


async def test_fade_mode_fades_out_and_in_end_to_end(
    store: MediaStore, clips: Clips, tmp_path: Path
) -> None:
    keys = [f"seg/{n}.wav" for n in range(2)]
    await put(store, dict(zip(keys, clips.tones[:2], strict=True)))
    event = merge_request("crossfade_audio", keys, "out/faded.m4a", fade_mode="fade",
                          fade_duration_s=0.5)  # fmt: skip
    await run(handler_for(store), event)
    out = await fetch(store, "out/faded.m4a", tmp_path)
    assert abs(media.stream_seconds(out, "audio") - 20.0) <= 0.05
    # Faded to (almost) nothing at the join, full level either side.
    assert min(media.rms_windows(out, 9.9, 10.1, 0.02)) < 0.05 * max(media.rms_windows(out, 5, 6))


@pytest.mark.parametrize("mode", ["trim", "stretch", "compress"])
@pytest.mark.parametrize("music", ["music_long", "music_short"])
async def test_sync_modes_fit_the_soundtrack_and_leave_the_video_alone(
    store: MediaStore, clips: Clips, tmp_path: Path, mode: str, music: str
) -> None:
    await put(store, {"v.mp4": clips.b, "m.wav": getattr(clips, music)})
    event = merge_request("mux", ["v.mp4"], "out/muxed.mp4", audio_key="m.wav", sync_mode=mode)
    done = await run(handler_for(store), event)
    out = await fetch(store, "out/muxed.mp4", tmp_path)
    assert done.copied
    assert media.packets(out) == media.packets(clips.b)  # the video stream, untouched
    assert media.top_boxes(out)[:2] == [b"ftyp", b"moov"]
    assert abs(media.stream_seconds(out, "audio") - 3.0) <= 0.05
    assert abs(done.duration_ms - 3000) <= 50
    streams = media.probe(out)["streams"]
    assert isinstance(streams, list)
    a = next(s for s in streams if s["codec_type"] == "audio")
    # AAC at up to 192 kb/s (a plain tone needs less than the encoder may spend).
    assert a["codec_name"] == "aac" and int(a["sample_rate"]) == 48000
    assert int(a["bit_rate"]) <= 200_000
    if mode == "trim" and music == "music_short":
        assert max(media.rms_windows(out, 2.2, 2.9)) < 0.001  # padded with silence
    if (mode != "trim" and music == "music_long") or mode == "stretch":
        assert min(media.rms_windows(out, 2.2, 2.9)) > 0.0015  # sped up or slowed: no silence


@pytest.mark.parametrize("voiced", [True, False], ids=["ducked-voiceover", "music-only"])
async def test_loudness_lands_within_1_lu_of_the_target(
    store: MediaStore, clips: Clips, tmp_path: Path, voiced: bool
) -> None:
    # Music alone once failed to encode: loudnorm left the channel layout open.
    await put(store, {"v.mp4": clips.b, "m.wav": clips.music_long, "vo.wav": clips.voice})
    voice = {"voiceover_key": "vo.wav"} if voiced else {}
    event = merge_request("mux", ["v.mp4", "m.wav"], "out/loud.mp4",
                          loudness={"integrated_lufs": -16}, **voice)  # fmt: skip
    await run(handler_for(store), event)
    out = await fetch(store, "out/loud.mp4", tmp_path)
    assert abs(media.integrated_lufs(out) - (-16)) <= 1.0
    assert media.packets(out) == media.packets(clips.b)
    assert abs(media.stream_seconds(out, "audio") - 3.0) <= 0.05


async def test_a_repeated_request_writes_the_same_object(
    store: MediaStore, clips: Clips, tmp_path: Path
) -> None:
    await put(store, {"v.mp4": clips.b, "m.wav": clips.music_short})
    handler = handler_for(store)
    event = merge_request("mux", ["v.mp4", "m.wav"], "out/same.mp4", sync_mode="stretch")
    first = await run(handler, event)
    one = (await fetch(store, "out/same.mp4", tmp_path)).read_bytes()
    # A redelivery with its checkpoints lost (a crash before they were saved) merges again.
    second = await run(handler, event)
    (tmp_path / "out_same.mp4").unlink()
    two = (await fetch(store, "out/same.mp4", tmp_path)).read_bytes()
    assert one == two
    assert first.model_dump(exclude={"event_id", "occurred_at"}) == second.model_dump(
        exclude={"event_id", "occurred_at"}
    )
