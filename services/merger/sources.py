"""What each operation reads, and what each input must hold: checked before any heavy
work, so a bad request costs a HEAD and an ffprobe per input, and fails with a code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from schemas.codes import Code
from schemas.merge import MergeRequested
from services.merger.errors import MergeRejected
from services.merger.formats import AUDIO_OUTPUTS, VIDEO_OUTPUTS, extension
from services.merger.media import MediaInfo

Needs = Literal["video", "audio"]


@dataclass(frozen=True)
class Limits:
    max_inputs: int
    max_duration_ms: int


@dataclass(frozen=True)
class Source:
    key: str
    needs: Needs
    label: str  # how a message names it: by position or role, never by key


def sources_for(event: MergeRequested, limits: Limits) -> list[Source]:
    """The inputs in the order the operation uses them; :class:`MergeRejected` when the
    request has the wrong shape for its operation."""
    inputs, params = event.inputs, event.params
    if len(inputs) > limits.max_inputs:
        raise MergeRejected(
            Code.TOO_MANY_INPUTS,
            f"{len(inputs)} inputs exceed the limit of {limits.max_inputs} per merge",
        )
    ext = extension(event.output_key)
    if event.operation == "concat_video":
        _output(ext, VIDEO_OUTPUTS, "a video")
        return [Source(k, "video", f"input {n}") for n, k in enumerate(inputs, start=1)]
    if event.operation == "crossfade_audio":
        _output(ext, AUDIO_OUTPUTS, "an audio")
        return [Source(k, "audio", f"input {n}") for n, k in enumerate(inputs, start=1)]
    _output(ext, VIDEO_OUTPUTS, "a video")
    soundtrack = params.audio_key
    if soundtrack is None and len(inputs) == 2:
        soundtrack = inputs[1]
    elif soundtrack is None or len(inputs) != 1:
        raise MergeRejected(
            Code.INVALID_MERGE_REQUEST,
            "a mux takes one video and one soundtrack: inputs [video] with params.audio_key, "
            "or inputs [video, audio]",
        )
    found = [Source(inputs[0], "video", "the video"), Source(soundtrack, "audio", "the soundtrack")]
    if params.voiceover_key is not None:
        found.append(Source(params.voiceover_key, "audio", "the voiceover"))
    return found


def _output(ext: str, known: Mapping[str, object], kind: str) -> None:
    if ext not in known:
        raise MergeRejected(
            Code.INVALID_MERGE_REQUEST,
            f"output_key must name {kind} file ending in one of: "
            + ", ".join(f".{e}" for e in sorted(known)),
        )


def check_input(source: Source, info: MediaInfo, limits: Limits) -> None:
    """:class:`MergeRejected` unless ``info`` has what ``source`` is read for."""
    if source.needs == "video" and info.video is None:
        raise MergeRejected(Code.INPUT_NO_VIDEO, f"{source.label} has no video stream")
    if source.needs == "audio" and info.audio is None:
        raise MergeRejected(Code.INPUT_NO_AUDIO, f"{source.label} has no audio stream")
    length = info.video_ms if source.needs == "video" else info.audio_ms
    if not length:
        raise MergeRejected(Code.INPUT_NOT_MEDIA, f"{source.label} has no known duration")
    if length > limits.max_duration_ms:
        raise MergeRejected(
            Code.INPUT_TOO_LONG,
            f"{source.label} lasts {length / 1000:.1f} s, over the limit of "
            f"{limits.max_duration_ms / 1000:g} s",
        )


def length_ms(source: Source, info: MediaInfo) -> int:
    """The part of ``info`` the merge uses: its picture or its sound."""
    value = info.video_ms if source.needs == "video" else info.audio_ms
    assert value, "checked by check_input"
    return value
