"""What each operation reads and what each input must hold, with the codes it fails with."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.codes import KIND, Code, Kind
from schemas.merge import MergeParams, MergeRequested
from services.merger.errors import MergeRejected
from services.merger.sources import Limits, Source, check_input, sources_for
from tests.unit.merger.media_infos import sound, video

pytestmark = pytest.mark.unit

LIMITS = Limits(max_inputs=3, max_duration_ms=60_000)


def request(
    operation: str, inputs: list[str], output: str = "out/x.mp4", **params: Any
) -> MergeRequested:
    return MergeRequested(job_id="job-1", tenant_id="acme", producer="tests",
                          operation=operation, inputs=inputs,  # type: ignore[arg-type]
                          params=MergeParams(**params), output_key=output)  # fmt: skip


def rejected(call: Any) -> MergeRejected:
    with pytest.raises(MergeRejected) as err:
        call()
    assert err.value.public and err.value.message
    return err.value


def test_more_inputs_than_the_limit() -> None:
    err = rejected(lambda: sources_for(request("concat_video", ["a.mp4"] * 4), LIMITS))
    assert err.code == Code.TOO_MANY_INPUTS and "limit of 3" in err.message


def test_concat_and_crossfade_read_every_input_for_video_or_audio() -> None:
    concat = sources_for(request("concat_video", ["a.mp4", "b.mp4"]), LIMITS)
    assert [(s.key, s.needs, s.label) for s in concat] == [
        ("a.mp4", "video", "input 1"), ("b.mp4", "video", "input 2")]  # fmt: skip
    fade = sources_for(request("crossfade_audio", ["a.wav", "b.mp3"], "o.m4a"), LIMITS)
    assert [s.needs for s in fade] == ["audio", "audio"]


def test_mux_takes_a_video_and_a_soundtrack_either_way() -> None:
    by_param = sources_for(request("mux", ["v.mp4"], audio_key="m.mp3"), LIMITS)
    by_input = sources_for(request("mux", ["v.mp4", "m.mp3"]), LIMITS)
    assert [(s.key, s.needs) for s in by_param] == [(s.key, s.needs) for s in by_input] == [
        ("v.mp4", "video"), ("m.mp3", "audio")]  # fmt: skip
    voiced = sources_for(request("mux", ["v.mp4", "m.mp3"], voiceover_key="vo.wav"), LIMITS)
    assert [(s.key, s.label) for s in voiced][2] == ("vo.wav", "the voiceover")


@pytest.mark.parametrize(
    ("inputs", "params"),
    [(["v.mp4"], {}), (["v.mp4", "m.mp3"], {"audio_key": "x.mp3"}), (["v", "a", "b"], {})],
)
def test_a_mux_of_the_wrong_shape(inputs: list[str], params: dict[str, Any]) -> None:
    err = rejected(lambda: sources_for(request("mux", inputs, **params), LIMITS))
    assert err.code == Code.INVALID_MERGE_REQUEST


@pytest.mark.parametrize(
    ("operation", "output"),
    [("concat_video", "out/x.mp3"), ("mux", "out/x"), ("crossfade_audio", "out/x.mp4")],
)
def test_the_output_key_names_a_container_we_write(operation: str, output: str) -> None:
    inputs = ["v.mp4", "a.mp3"] if operation == "mux" else ["a"]
    err = rejected(lambda: sources_for(request(operation, inputs, output), LIMITS))
    assert err.code == Code.INVALID_MERGE_REQUEST and "output_key" in err.message


@pytest.mark.parametrize(
    ("source", "info", "code"),
    [
        (Source("k", "video", "input 2"), sound(), Code.INPUT_NO_VIDEO),
        (Source("k", "audio", "the soundtrack"), video(audio=False), Code.INPUT_NO_AUDIO),
        (Source("k", "video", "input 1"), video(61_000), Code.INPUT_TOO_LONG),
        (Source("k", "audio", "input 1"), sound(0), Code.INPUT_NOT_MEDIA),
    ],
)
def test_inputs_without_what_they_are_read_for(source: Source, info: Any, code: Code) -> None:
    err = rejected(lambda: check_input(source, info, LIMITS))
    assert err.code == code and err.message.startswith(source.label)
    assert "k" not in err.message.split()  # named by position, not by key


def test_inputs_that_fit() -> None:
    check_input(Source("k", "video", "input 1"), video(60_000), LIMITS)
    check_input(Source("k", "audio", "the soundtrack"), video(1000), LIMITS)


def test_every_merge_code_has_a_kind() -> None:
    codes = [
        Code.INVALID_MERGE_REQUEST,
        Code.TOO_MANY_INPUTS,
        Code.INPUT_MISSING,
        Code.INPUT_NOT_MEDIA,
        Code.INPUT_NO_VIDEO,
        Code.INPUT_NO_AUDIO,
        Code.INPUT_TOO_LONG,
    ]
    assert {KIND[c] for c in codes} == {Kind.INVALID, Kind.NOT_FOUND}
    assert KIND[Code.INPUT_MISSING] == Kind.NOT_FOUND
