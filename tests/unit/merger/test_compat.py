"""When inputs can be joined by stream copy, and the canvas the others are normalised to."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from services.merger.compat import canvas_for, copy_mismatch
from tests.unit.merger.media_infos import video

pytestmark = pytest.mark.unit


def test_identical_inputs_are_copied() -> None:
    assert copy_mismatch([video(2000), video(3000), video(1000)]) is None
    assert copy_mismatch([video(2000, audio=False), video(3000, audio=False)]) is None


@pytest.mark.parametrize(
    ("other", "words"),
    [
        (video(width=640, height=480), "width 640"),
        (video(fps="30/1"), "frame rate 30/1"),
        (video(codec="hevc"), "codec hevc"),
        (video(profile="Main"), "profile Main"),
        (video(pix_fmt="yuv444p"), "pixel format"),
        (video(time_base="1/90000"), "time base"),
        (video(extradata="CRC32:ffff"), "codec setup"),
        (video(audio=False), "streams"),
    ],
)
def test_any_difference_means_normalising(other: object, words: str) -> None:
    reason = copy_mismatch([video(), video(), other])  # type: ignore[list-item]
    assert reason is not None and reason.startswith("input 3") and words in reason


def test_audio_parameters_count_too() -> None:
    first = video()
    assert first.audio is not None
    other = dataclasses.replace(first, audio=dataclasses.replace(first.audio, sample_rate=44100))
    reason = copy_mismatch([first, other])
    assert reason is not None and "sample rate 44100" in reason


def test_the_canvas_is_the_largest_picture_at_the_highest_rate_up_to_60() -> None:
    canvas = canvas_for([video(width=320, height=240, fps="25/1"),
                         video(width=641, height=361, fps="30000/1001"),
                         video(width=160, height=120, fps="120/1")])  # fmt: skip
    assert (canvas.width, canvas.height) == (640, 360)  # even sizes
    assert canvas.fps == Fraction(60) and canvas.fps_text == "60/1"
    assert (canvas.sample_rate, canvas.layout) == (48000, "stereo")
    first_of_equals = canvas_for([video(width=320, height=240), video(width=240, height=320)])
    assert (first_of_equals.width, first_of_equals.height) == (320, 240)
