"""The arithmetic of merging: fitting a soundtrack to a video, fade lengths at joins,
how long a merged file lasts and how long ffmpeg may take to make it. Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas.merge import FadeMode, SyncMode

# ffmpeg's atempo keeps the pitch for factors in [0.5, 2]; further ones are chained.
ATEMPO_MIN = 0.5
ATEMPO_MAX = 2.0
# Below this a tempo change is inaudible and not worth a filter (0.1 %).
TEMPO_EPSILON = 0.001
# Shorter fades than this are no fade: the segments are joined end to end.
MIN_FADE_MS = 10


def atempo_chain(ratio: float) -> list[float]:
    """Factors in [0.5, 2] whose product is ``ratio`` (> 1 plays faster); [] for ~1."""
    if ratio <= 0:
        raise ValueError("a tempo ratio must be positive")
    if abs(ratio - 1) < TEMPO_EPSILON:
        return []
    factors: list[float] = []
    while ratio > ATEMPO_MAX:
        factors.append(ATEMPO_MAX)
        ratio /= ATEMPO_MAX
    while ratio < ATEMPO_MIN:
        factors.append(ATEMPO_MIN)
        ratio /= ATEMPO_MIN
    if abs(ratio - 1) >= TEMPO_EPSILON:
        factors.append(ratio)
    return factors


@dataclass(frozen=True)
class SyncPlan:
    """How a soundtrack of ``audio_ms`` becomes exactly ``target_ms`` long: played at
    ``tempo`` (the atempo chain, empty for unchanged), then padded with silence or cut."""

    target_ms: int
    tempo: tuple[float, ...]
    pads: bool  # silence is added at the end
    cuts: bool  # the end is cut off

    @property
    def ratio(self) -> float:
        return math.prod(self.tempo)


def plan_sync(video_ms: int, audio_ms: int, mode: SyncMode) -> SyncPlan:
    """``trim``: cut or pad to the video's length; ``stretch``: change the tempo (pitch
    kept) so the audio lasts as long as the video; ``compress``: speed up only when the
    audio is longer, else pad like ``trim``."""
    if video_ms <= 0 or audio_ms <= 0:
        raise ValueError("durations must be positive")
    ratio = audio_ms / video_ms
    speed_up = mode == "stretch" or (mode == "compress" and ratio > 1)
    tempo = tuple(atempo_chain(ratio)) if speed_up else ()
    # What is left after the tempo change; the final pad or cut absorbs rounding.
    played = audio_ms / math.prod(tempo)
    return SyncPlan(
        target_ms=video_ms,
        tempo=tempo,
        pads=played < video_ms - 1,
        cuts=played > video_ms + 1,
    )


def effective_fade_ms(fade_duration_s: float, crossfade_ms: int, fields_set: set[str]) -> int:
    """``fade_duration_s`` when the request gives it; else the older ``crossfade_ms`` when
    given; else the default of ``fade_duration_s``."""
    if "fade_duration_s" not in fields_set and "crossfade_ms" in fields_set:
        return crossfade_ms
    return round(fade_duration_s * 1000)


def fade_lengths(durations_ms: list[int], fade_ms: int) -> list[int]:
    """The fade at each join (one fewer than segments). A middle segment is faded at both
    ends, so it gives each join at most half its length; the first and last give their
    whole length to their only join. Short segments shorten the fade; they never fail."""
    if any(d <= 0 for d in durations_ms):
        raise ValueError("segment durations must be positive")
    last = len(durations_ms) - 1
    fades: list[int] = []
    for j in range(last):
        left = durations_ms[j] if j == 0 else durations_ms[j] // 2
        right = durations_ms[j + 1] if j + 1 == last else durations_ms[j + 1] // 2
        fade = min(fade_ms, left, right)
        fades.append(fade if fade >= MIN_FADE_MS else 0)
    return fades


def joined_ms(durations_ms: list[int], fades_ms: list[int], mode: FadeMode) -> int:
    """How long the joined track lasts: crossfades overlap the segments, fades do not."""
    total = sum(durations_ms)
    return total - sum(fades_ms) if mode == "crossfade" else total


def timeout_for(expected_ms: int, factor: float, minimum_s: float) -> float:
    """How long one ffmpeg run over ``expected_ms`` of media may take."""
    return max(minimum_s, factor * expected_ms / 1000)
