"""The offline ``local`` provider: real audio made on this machine, no network, no key.

It is the default provider, so every environment (a laptop, CI) can run the whole
pipeline. Output is deterministic: the same request gives the same bytes.

* **music**: chords. The prompt's words and the seed pick a key, a mode (mood words:
  "dark", "sad" -> minor; "happy", "calm" -> major), a tempo ("slow", "ambient" vs "fast",
  "upbeat") and a progression; one cycle of the progression (pad chords, a plucked bass,
  an arpeggio) is rendered with ``aevalsrc`` and looped with ``aloop``, so the filter
  graph stays a few KiB for a 10-minute scene. With ``continuation_state`` (the previous
  scene's) the scene keeps the previous key, mode, tempo and progression and starts on
  the chord after the last one played; ``fetch`` returns the state for the next scene.
* **sfx**: shaped noise from ``anoisesrc`` (colour from the prompt: rain pink, wind brown
  with gusts, explosions and impacts a burst with a decay), band-limited, seeded.
* **voiceover**: espeak-ng speaks ``text``; shorter speech is padded with silence at the
  end, longer speech is sped up with ``atempo`` to fit: words are never cut.

Every child process goes through :mod:`services.common.ffmpeg.runner` (own process group,
killed on timeout or cancellation, bounded stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import time
import unicodedata
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final, Literal

from schemas.codes import Code
from services.audio_agent.providers.base import (
    Generated,
    GenerationRequest,
    InvalidGeneration,
    OnStatus,
    ProviderRejected,
    Ticket,
)
from services.common.errors import PermanentError
from services.common.ffmpeg import FFmpeg, FFmpegError, FFmpegTimeout, media_path, runner
from services.common.obs import metrics

# Scratch space of one voice synthesis; one a killed agent left is removed at the next start.
VOICE_WORKDIR_PREFIX: Final = "tapedeck-voice-"

__all__ = [
    "MAX_DURATION_S",
    "NAME",
    "LocalProvider",
    "MusicPlan",
    "SfxPlan",
    "VoicePlan",
    "atempo_chain",
    "midi_hz",
    "music_expression",
    "plan_music",
    "plan_sfx",
    "plan_voice",
    "request_from_data",
    "sfx_envelope",
    "words_of",
]

NAME: Final = "local"
MAX_DURATION_S: Final = 600.0
MAX_TEXT_CHARS: Final = 20_000
KINDS: Final = ("music", "sfx", "voiceover")
FORMATS: Final = ("mp3", "wav")
MODELS: Final = (None, "", NAME)
MP3_RATES: Final = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
WAV_RATES: Final = (8000, 192_000)
CONTENT_TYPES: Final = {"mp3": "audio/mpeg", "wav": "audio/wav"}
STATE_VERSION: Final = 1

# -- words and hashing ----------------------------------------------------------------------------


def words_of(prompt: str) -> tuple[str, ...]:
    """The prompt's words: Unicode-normalised, case-folded, punctuation dropped."""
    text = unicodedata.normalize("NFKC", prompt).casefold()
    return tuple(re.findall(r"\w+", text))


def _choose(label: str, words: Sequence[str], seed: int | None, n: int) -> int:
    """A deterministic choice in ``range(n)`` from the words, the seed and a label."""
    doc = json.dumps([label, seed, list(words)], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(doc.encode()).digest()[:8], "big") % n


def _unit(label: str, words: Sequence[str], seed: int | None) -> float:
    """A deterministic number in [0, 1)."""
    return _choose(label, words, seed, 1 << 30) / (1 << 30)


def _vocab(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _hits(words: Sequence[str], vocabulary: frozenset[str]) -> int:
    return sum(1 for w in words if w in vocabulary)


def _num(x: float) -> str:
    """A float for an ffmpeg expression or option: fixed precision, no exponent."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


# -- music ----------------------------------------------------------------------------------------

Mode = Literal["major", "minor"]

MINOR_WORDS: Final = _vocab(
    "dark sad melancholy melancholic somber sombre gloomy tense tension suspense suspenseful "
    "mysterious mystery ominous eerie scary horror creepy haunting haunted tragic tragedy "
    "lonely grief sorrow epic dramatic sinister noir menacing cold moody brooding"
)
MAJOR_WORDS: Final = _vocab(
    "happy bright cheerful joyful joy uplifting hopeful sunny playful fun warm triumphant "
    "calm peaceful love romantic upbeat positive summer festive heroic sweet gentle inspiring "
    "inspirational celebration victory"
)
SLOW_WORDS: Final = _vocab(
    "slow ambient calm peaceful relaxing relaxed gentle soft meditative meditation dreamy "
    "lullaby sleepy sleep chill lofi serene tranquil ballad sad melancholy somber sombre "
    "drone pad atmospheric quiet"
)
FAST_WORDS: Final = _vocab(
    "fast upbeat energetic energy action chase dance driving intense rock running racing "
    "frantic quick party exciting excited battle fight urgent hurry techno edm"
)
BRIGHT_WORDS: Final = _vocab("bright piano bells sparkly sparkling shiny glass crisp")
MELLOW_WORDS: Final = _vocab("dark warm soft mellow muffled deep low gentle")
PLUCK_WORDS: Final = _vocab("piano pluck plucked guitar staccato harp marimba")
SUSTAIN_WORDS: Final = _vocab("pad ambient strings drone organ choir atmospheric")
NO_ARP_WORDS: Final = _vocab("ambient drone pad minimal sparse")

SCALES: Final[dict[str, tuple[int, ...]]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),  # natural minor
}
# Scale degrees (0 = the tonic) of common progressions.
PROGRESSIONS: Final[dict[str, tuple[tuple[int, ...], ...]]] = {
    "major": (
        (0, 4, 5, 3),  # I  V  vi IV
        (0, 5, 3, 4),  # I  vi IV V
        (0, 3, 4, 3),  # I  IV V  IV
        (5, 3, 0, 4),  # vi IV I  V
        (0, 3, 0, 4),  # I  IV I  V
        (1, 4, 0, 5),  # ii V  I  vi
    ),
    "minor": (
        (0, 5, 2, 6),  # i  VI  III VII
        (0, 3, 4, 0),  # i  iv  v   i
        (0, 6, 5, 6),  # i  VII VI  VII
        (0, 3, 5, 4),  # i  iv  VI  v
        (0, 5, 3, 4),  # i  VI  iv  v
    ),
}
KEY_NAMES: Final = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
TEMPO_RANGES: Final = {"slow": (60, 80), "medium": (84, 112), "fast": (120, 150)}
TEMPO_LIMITS: Final = (40, 200)
BEATS_PER_CHORD: Final = 4


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


@dataclass(frozen=True)
class MusicPlan:
    """The musical choices for one scene; the first four travel to the next scene."""

    key: int  # tonic pitch class, 0 = C
    mode: Mode
    tempo: int  # beats per minute
    progression: tuple[int, ...]  # scale degrees
    start_chord: int  # index into ``progression`` of the scene's first chord
    brightness: float  # weight of the upper partials, 0..1
    decay: float  # how fast the pad fades within a chord (1/s)
    arpeggio: bool
    beats_per_chord: int = BEATS_PER_CHORD

    @property
    def beat_s(self) -> float:
        return 60.0 / self.tempo

    @property
    def chord_s(self) -> float:
        return self.beat_s * self.beats_per_chord

    @property
    def cycle_s(self) -> float:
        return self.chord_s * len(self.progression)

    @property
    def key_name(self) -> str:
        return f"{KEY_NAMES[self.key]} {self.mode}"

    def chord_notes(self, degree: int) -> tuple[int, int, int]:
        """MIDI notes of the triad on a scale degree, in the pad's register."""
        scale = SCALES[self.mode]
        base = 48 + self.key - (12 if self.key > 6 else 0)  # tonic between F#2 and F#3

        def note(step: int) -> int:
            return base + scale[step % 7] + 12 * (step // 7)

        return note(degree), note(degree + 2), note(degree + 4)

    def chords(self) -> list[int]:
        """The scene's cycle of scale degrees, starting at ``start_chord``."""
        n = len(self.progression)
        return [self.progression[(self.start_chord + i) % n] for i in range(n)]

    def next_chord(self, duration_s: float) -> int:
        """The chord after the last one this scene starts (played whole or in part)."""
        played = max(1, math.ceil(duration_s / self.chord_s - 1e-6))
        return (self.start_chord + played) % len(self.progression)

    def state_after(self, duration_s: float) -> dict[str, Any]:
        """What the next scene needs to continue this one."""
        return {
            "version": STATE_VERSION,
            "key": self.key,
            "key_name": self.key_name,
            "mode": self.mode,
            "tempo": self.tempo,
            "progression": list(self.progression),
            "next_chord": self.next_chord(duration_s),
        }


def _mood_mode(words: Sequence[str], seed: int | None) -> Mode:
    score = _hits(words, MAJOR_WORDS) - _hits(words, MINOR_WORDS)
    if score > 0:
        return "major"
    if score < 0:
        return "minor"
    return ("major", "minor")[_choose("mode", words, seed, 2)]


def _tempo(words: Sequence[str], seed: int | None) -> int:
    score = _hits(words, FAST_WORDS) - _hits(words, SLOW_WORDS)
    band = "fast" if score > 0 else "slow" if score < 0 else "medium"
    lo, hi = TEMPO_RANGES[band]
    return lo + _choose("tempo", words, seed, hi - lo + 1)


def _carried(state: dict[str, Any] | None) -> dict[str, Any]:
    """The valid parts of a previous scene's state; anything malformed is ignored."""
    if not isinstance(state, dict):
        return {}
    out: dict[str, Any] = {}
    key = state.get("key")
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < 12:
        out["key"] = key
    if state.get("mode") in SCALES:
        out["mode"] = state["mode"]
    tempo = state.get("tempo")
    if isinstance(tempo, int | float) and not isinstance(tempo, bool) and math.isfinite(tempo):
        out["tempo"] = min(max(round(tempo), TEMPO_LIMITS[0]), TEMPO_LIMITS[1])
    prog = state.get("progression")
    if (
        isinstance(prog, list)
        and 1 <= len(prog) <= 16
        and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 7 for d in prog)
    ):
        out["progression"] = tuple(prog)
        nxt = state.get("next_chord")
        if isinstance(nxt, int) and not isinstance(nxt, bool):
            out["start_chord"] = nxt % len(prog)
    return out


def plan_music(request: GenerationRequest) -> MusicPlan:
    """The musical choices for a request: a pure function of its prompt, seed and
    continuation state."""
    words = words_of(request.prompt)
    seed = request.seed
    carried = _carried(request.continuation_state)
    mode: Mode = carried.get("mode") or _mood_mode(words, seed)
    key = carried.get("key", _choose("key", words, seed, 12))
    tempo = carried.get("tempo", _tempo(words, seed))
    if "progression" in carried:
        progression = carried["progression"]
        start = carried.get("start_chord", 0)
    else:
        options = PROGRESSIONS[mode]
        progression = options[_choose("progression", words, seed, len(options))]
        start = 0
    # The timbre follows this scene's own prompt, even when the harmony carries over.
    if _hits(words, BRIGHT_WORDS) > _hits(words, MELLOW_WORDS):
        brightness = 0.55 + 0.1 * _unit("brightness", words, seed)
    elif _hits(words, MELLOW_WORDS):
        brightness = 0.2 + 0.1 * _unit("brightness", words, seed)
    else:
        brightness = 0.3 + 0.2 * _unit("brightness", words, seed)
    if _hits(words, PLUCK_WORDS) > _hits(words, SUSTAIN_WORDS):
        decay = 2.0 + _unit("decay", words, seed)
    elif _hits(words, SUSTAIN_WORDS):
        decay = 0.2 + 0.2 * _unit("decay", words, seed)
    else:
        decay = 0.6 + 0.8 * _unit("decay", words, seed)
    arpeggio = not _hits(words, NO_ARP_WORDS)
    return MusicPlan(
        key=key, mode=mode, tempo=tempo, progression=tuple(progression), start_chord=start,
        brightness=round(brightness, 4), decay=round(decay, 4), arpeggio=arpeggio,
    )  # fmt: skip


def _if_chain(register: int, branches: Sequence[str]) -> str:
    """``branches[ld(register)]`` as nested ``if`` (evaluated lazily by ffmpeg)."""
    expr = branches[-1]
    for i in range(len(branches) - 2, -1, -1):
        expr = f"if(eq(ld({register}),{i}),{branches[i]},{expr})"
    return expr


def music_expression(plan: MusicPlan) -> str:
    """An ``aevalsrc`` expression for one cycle of the progression (t in [0, cycle)).

    Registers: 0 time in the chord, 1 time in the beat, 2 chord index, 3 time in the
    arpeggio step, 4 arpeggio step. Every envelope is zero at its boundaries, so the
    frequency changes (and the loop's wrap) do not click.
    """
    beat, chord = plan.beat_s, plan.chord_s
    step = beat / 2  # the arpeggio plays eighth notes
    b1, b2 = plan.brightness, plan.brightness**2
    pads, basses, arps = [], [], []
    for degree in plan.chords():
        notes = plan.chord_notes(degree)
        pad = "+".join(
            f"sin({_num(2 * math.pi * midi_hz(n))}*t)"
            f"+{_num(b1)}*sin({_num(4 * math.pi * midi_hz(n))}*t)"
            f"+{_num(b2)}*sin({_num(6 * math.pi * midi_hz(n))}*t)"
            for n in notes
        )
        pads.append(f"({pad})")
        bass_hz = midi_hz(notes[0] - 12)
        basses.append(
            f"(sin({_num(2 * math.pi * bass_hz)}*t)+0.3*sin({_num(4 * math.pi * bass_hz)}*t))"
        )
        pattern = (notes[0] + 12, notes[1] + 12, notes[2] + 12, notes[1] + 12)
        arps.append(
            "sin(t*" + _if_chain(4, [_num(2 * math.pi * midi_hz(n)) for n in pattern]) + ")"
        )
    c, bt, s = _num(chord), _num(beat), _num(step)
    head = (
        f"st(0,mod(t,{c}));st(1,mod(t,{bt}));st(2,floor(t/{c}));"
        f"st(3,mod(t,{s}));st(4,mod(floor(t/{s}),4));"
    )
    chord_env = (
        f"min(1,ld(0)/0.08)*min(1,({c}-ld(0))/0.15)*(0.6+0.4*exp(-{_num(plan.decay)}*ld(0)))"
    )
    pulse = "(0.8+0.2*min(1,ld(1)/0.02)*exp(-6*ld(1)))"
    bass_env = f"min(1,ld(1)/0.006)*exp(-3*ld(1))*min(1,({bt}-ld(1))/0.03)"
    arp_env = f"min(1,ld(3)/0.004)*exp(-7*ld(3))*min(1,({s}-ld(3))/0.01)"
    body = f"0.08*{chord_env}*{pulse}*{_if_chain(2, pads)}"
    body += f"+0.22*{bass_env}*{_if_chain(2, basses)}"
    if plan.arpeggio:
        body += f"+0.1*{arp_env}*{_if_chain(2, arps)}"
    return head + body


# -- sfx ------------------------------------------------------------------------------------------

SfxStyle = Literal["rain", "wind", "boom", "hit", "texture"]

RAIN_WORDS: Final = _vocab(
    "rain raining rainy drizzle shower downpour water stream river waterfall sea ocean waves "
    "surf splash fountain sizzle static hiss"
)
WIND_WORDS: Final = _vocab(
    "wind windy breeze gust gusts storm blizzard air howling hurricane draft rumble engine traffic"
)
BOOM_WORDS: Final = _vocab(
    "explosion explosions explode exploding blast boom thunder bomb crash collapse earthquake"
)
HIT_WORDS: Final = _vocab(
    "impact hit hits thud punch slam knock knocking gunshot gunshots shot shots smash "
    "collision bang footsteps footstep clap"
)


@dataclass(frozen=True)
class SfxPlan:
    style: SfxStyle
    color: Literal["white", "pink", "brown"]
    noise_seed: int  # anoisesrc's seed
    highpass_hz: int
    lowpass_hz: int
    amplitude: float
    rate_hz: float  # gusts (wind), hits per second (hit), swell (texture)
    decay: float  # burst decay (1/s)


def plan_sfx(request: GenerationRequest) -> SfxPlan:
    words = words_of(request.prompt)
    seed = request.seed
    u = [_unit(f"sfx{i}", words, seed) for i in range(4)]
    noise_seed = _choose("noise", words, seed, 2**32 - 1)
    # Ordered by specificity: "thunder storm" is a boom, "rain storm" is rain.
    if _hits(words, BOOM_WORDS):
        return SfxPlan(
            "boom", "brown", noise_seed, highpass_hz=30, lowpass_hz=round(900 + 1200 * u[0]),
            amplitude=1.0, rate_hz=0.0, decay=round(1.0 + 1.2 * u[1], 3),
        )  # fmt: skip
    if _hits(words, HIT_WORDS):
        return SfxPlan(
            "hit", "pink", noise_seed, highpass_hz=round(80 + 120 * u[0]),
            lowpass_hz=round(2500 + 3000 * u[1]), amplitude=0.9,
            rate_hz=round(0.5 + 0.5 * u[2], 3), decay=round(9 + 6 * u[3], 3),
        )  # fmt: skip
    if _hits(words, RAIN_WORDS):
        return SfxPlan(
            "rain", "pink", noise_seed, highpass_hz=round(300 + 300 * u[0]),
            lowpass_hz=round(6000 + 4000 * u[1]), amplitude=0.6, rate_hz=0.0, decay=0.0,
        )  # fmt: skip
    if _hits(words, WIND_WORDS):
        return SfxPlan(
            "wind", "brown", noise_seed, highpass_hz=round(60 + 60 * u[0]),
            lowpass_hz=round(700 + 900 * u[1]), amplitude=1.0,
            rate_hz=round(0.08 + 0.2 * u[2], 3), decay=0.0,
        )  # fmt: skip
    center = 500 + 2500 * u[0]
    return SfxPlan(
        "texture", "white", noise_seed, highpass_hz=round(center * 0.5),
        lowpass_hz=round(center * 2.0), amplitude=0.5, rate_hz=round(0.1 + 0.3 * u[1], 3),
        decay=0.0,
    )  # fmt: skip


ENVELOPE_RATE: Final = 2000  # Hz: enough for a 2 ms attack


def sfx_envelope(plan: SfxPlan, duration_s: float) -> str:
    """An ``aevalsrc`` gain expression (0..1) over the scene: fades, gusts or bursts."""
    d = _num(duration_s)
    fade_in = _num(min(0.3, duration_s / 4))
    fade_out = _num(min(0.5, duration_s / 4))
    fades = f"min(1,t/{fade_in})*min(1,({d}-t)/{fade_out})"
    if plan.style == "boom":
        # One blast at the start, then a decaying rumble that never quite stops.
        return f"min(1,t/0.004)*(0.03+0.97*exp(-{_num(plan.decay)}*t))*min(1,({d}-t)/{fade_out})"
    if plan.style == "hit":
        period = _num(1 / plan.rate_hz)
        return (
            f"st(0,mod(t,{period}));min(1,ld(0)/0.002)*exp(-{_num(plan.decay)}*ld(0))"
            f"*min(1,({period}-ld(0))/0.01)*min(1,({d}-t)/0.01)"
        )
    if plan.style == "wind":
        f1, f2 = _num(2 * math.pi * plan.rate_hz), _num(2 * math.pi * plan.rate_hz * 2.7)
        return f"{fades}*(0.55+0.3*sin({f1}*t)+0.15*sin({f2}*t+1.3))"
    if plan.style == "texture":
        return f"{fades}*(0.75+0.25*sin({_num(2 * math.pi * plan.rate_hz)}*t))"
    return fades


# -- voiceover ------------------------------------------------------------------------------------

DEFAULT_VOICE: Final = "en-us"
DEFAULT_SPEED_WPM: Final = 165
DEFAULT_PITCH: Final = 50
SPEED_LIMITS: Final = (80, 450)
PITCH_LIMITS: Final = (0, 99)
_VOICE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+\-]{0,39}")
# Sped-up speech is fitted to this share of the scene, so atempo's rounding never
# reaches the last word.
FIT_SHARE: Final = 0.98


@dataclass(frozen=True)
class VoicePlan:
    voice: str
    speed_wpm: int
    pitch: int


def _int_option(options: dict[str, Any], name: str, default: int, limits: tuple[int, int]) -> int:
    value = options.get(name)
    if value is None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value != int(value)
    ):
        raise InvalidGeneration(f"option {name} must be a whole number", provider=NAME)
    if not limits[0] <= value <= limits[1]:
        raise InvalidGeneration(
            f"option {name} must be between {limits[0]} and {limits[1]}", provider=NAME
        )
    return int(value)


def plan_voice(request: GenerationRequest) -> VoicePlan:
    """espeak-ng settings from ``request.options`` (voice, speed in words per minute,
    pitch 0-99); ``InvalidGeneration`` for bad values. Other options are ignored."""
    options = request.options or {}
    voice = options.get("voice", DEFAULT_VOICE)
    if not isinstance(voice, str) or not _VOICE_NAME.fullmatch(voice):
        raise InvalidGeneration("option voice must be an espeak-ng voice name", provider=NAME)
    return VoicePlan(
        voice=voice,
        speed_wpm=_int_option(options, "speed", DEFAULT_SPEED_WPM, SPEED_LIMITS),
        pitch=_int_option(options, "pitch", DEFAULT_PITCH, PITCH_LIMITS),
    )


def atempo_chain(ratio: float) -> list[float]:
    """``atempo`` factors whose product is ``ratio``, each at most 2 (cleaner speech)."""
    if not ratio > 0 or not math.isfinite(ratio):
        raise ValueError("ratio must be a positive number")
    factors: list[float] = []
    while ratio > 2.0:
        factors.append(2.0)
        ratio /= 2.0
    while ratio < 0.5:
        factors.append(0.5)
        ratio /= 0.5
    factors.append(ratio)
    return factors


# -- the provider ---------------------------------------------------------------------------------

_FIELDS: Final = tuple(f.name for f in fields(GenerationRequest))


def _canonical(request: GenerationRequest) -> str:
    return json.dumps(asdict(request), sort_keys=True, separators=(",", ":"), allow_nan=False)


def request_from_data(data: dict[str, Any]) -> GenerationRequest:
    """Rebuild a request from ``Ticket.data`` (a resumed fetch)."""
    try:
        doc = {k: data[k] for k in _FIELDS if k in data}
        if doc.get("options") is None:
            doc["options"] = {}
        return GenerationRequest(**doc)
    except TypeError as exc:
        raise InvalidGeneration(
            "the saved ticket does not describe a local generation", provider=NAME,
            provider_message=str(exc),
        ) from exc  # fmt: skip


def _exact_samples(duration_s: float, sample_rate: int) -> int:
    return max(1, round(duration_s * sample_rate))


class LocalProvider:
    """Music, sound effects and speech made on this machine with ffmpeg and espeak-ng."""

    name = NAME

    def __init__(self, ffmpeg: FFmpeg, espeak_bin: str = "espeak-ng") -> None:
        self.ffmpeg = ffmpeg
        self.espeak_bin = espeak_bin

    # -- the protocol -----------------------------------------------------------------------------

    def check(self, request: GenerationRequest) -> None:
        def bad(message: str) -> InvalidGeneration:
            return InvalidGeneration(message, provider=NAME)

        if request.kind not in KINDS:
            raise bad(f"unknown audio kind {request.kind!r}; expected one of {', '.join(KINDS)}")
        if request.model not in MODELS:
            raise bad(f"the local provider has no model {request.model!r}; use {NAME!r}")
        if request.format not in FORMATS:
            raise bad(f"format must be one of {', '.join(FORMATS)}")
        d = request.duration_s
        if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d):
            raise bad("duration_s must be a number")
        if not 0 < d <= MAX_DURATION_S:
            raise bad(f"duration_s must be more than 0 and at most {MAX_DURATION_S:g} seconds")
        rate = request.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int):
            raise bad("sample_rate must be a whole number")
        if request.format == "mp3" and rate not in MP3_RATES:
            raise bad(f"mp3 sample_rate must be one of {', '.join(map(str, sorted(MP3_RATES)))}")
        if not WAV_RATES[0] <= rate <= WAV_RATES[1]:
            raise bad(f"sample_rate must be between {WAV_RATES[0]} and {WAV_RATES[1]}")
        if request.seed is not None and (
            isinstance(request.seed, bool) or not isinstance(request.seed, int)
        ):
            raise bad("seed must be a whole number")
        if not isinstance(request.prompt, str):
            raise bad("prompt must be text")
        if request.kind in ("music", "sfx") and not request.prompt.strip():
            raise bad(f"a {request.kind} request needs a prompt")
        if request.kind == "voiceover":
            if not isinstance(request.text, str) or not request.text.strip():
                raise bad("a voiceover request needs text")
            if len(request.text) > MAX_TEXT_CHARS:
                raise bad(f"voiceover text must be at most {MAX_TEXT_CHARS} characters")
            plan_voice(request)
        if request.continuation_state is not None and not isinstance(
            request.continuation_state, dict
        ):
            raise bad("continuation_state must be an object")
        if not isinstance(request.options, dict):
            raise bad("options must be an object")
        try:
            _canonical(request)
        except (TypeError, ValueError) as exc:
            raise bad("options and continuation_state must be plain JSON") from exc

    async def submit(self, request: GenerationRequest) -> Ticket:
        self.check(request)
        canonical = _canonical(request)
        request_id = hashlib.sha256(canonical.encode()).hexdigest()[:32]
        return Ticket(provider=NAME, request_id=request_id, data=json.loads(canonical))

    async def fetch(
        self, ticket: Ticket, dest: Path, *, deadline_s: float, on_status: OnStatus = None
    ) -> Generated:
        if ticket.provider != NAME:
            raise ProviderRejected(
                f"a {ticket.provider!r} ticket cannot be fetched from the local provider",
                provider=NAME,
            )
        request = request_from_data(ticket.data)
        self.check(request)
        deadline = time.monotonic() + deadline_s
        if on_status is not None:
            await on_status("running", None)
        dest = Path(dest)
        started, status = time.perf_counter(), "error"
        try:
            if request.kind == "music":
                plan = plan_music(request)
                await self._ffmpeg(self._music_argv(request, plan, dest), deadline)
                state: dict[str, Any] | None = plan.state_after(request.duration_s)
            elif request.kind == "sfx":
                await self._ffmpeg(self._sfx_argv(request, plan_sfx(request), dest), deadline)
                state = None
            else:
                await self._voiceover(request, dest, deadline)
                state = None
            status = "ok"
        except BaseException:
            with contextlib.suppress(OSError):
                dest.unlink(missing_ok=True)
            raise
        finally:
            # Counted like a remote provider's call, so the console compares them.
            metrics.observe_provider(NAME, "render", status, time.perf_counter() - started)
        return Generated(
            path=dest, content_type=CONTENT_TYPES[request.format], continuation_state=state
        )

    async def cancel(self, ticket: Ticket) -> None:
        return None  # the work happens inside fetch; cancelling fetch stops it

    # -- command lines ----------------------------------------------------------------------------

    def _output_args(self, request: GenerationRequest, dest: Path) -> list[str]:
        """Mono at the request's rate; bit-exact, without metadata: same input, same bytes."""
        args = ["-ac", "1", "-ar", str(request.sample_rate)]
        if request.format == "mp3":
            bitrate = "128k" if request.sample_rate >= 32000 else "64k"
            args += ["-c:a", "libmp3lame", "-b:a", bitrate, "-id3v2_version", "0"]
        else:
            args += ["-c:a", "pcm_s16le"]
        return [
            *args,
            "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
            "-f", request.format, media_path(dest),
        ]  # fmt: skip

    def _graph_argv(self, graph: str, request: GenerationRequest, dest: Path) -> list[str]:
        return [
            self.ffmpeg.ffmpeg_bin, "-hide_banner", "-nostdin", "-nostats", "-y",
            "-loglevel", "error", "-filter_complex", graph, "-map", "[out]",
            *self._output_args(request, dest),
        ]  # fmt: skip

    def _music_argv(self, request: GenerationRequest, plan: MusicPlan, dest: Path) -> list[str]:
        rate = request.sample_rate
        total = _exact_samples(request.duration_s, rate)
        # One cycle exactly as the expression counts it (chord length as written in it),
        # rounded down: its last sample is still in the last chord's release.
        cycle = math.floor(float(_num(plan.chord_s)) * len(plan.progression) * rate)
        fade_out = min(0.05, request.duration_s / 4)
        source = f"aevalsrc=exprs='{music_expression(plan)}':s={rate}:c=mono"
        if total <= cycle:  # a short scene: no loop, and no more rendered than is heard
            graph = f"{source}:d={_num(request.duration_s + 0.1)},atrim=end_sample={total},"
        else:
            graph = (
                f"{source}:d={_num(plan.cycle_s + 0.1)},atrim=end_sample={cycle},"
                f"aloop=loop=-1:size={cycle},atrim=end_sample={total},asetpts=N/SR/TB,"
            )
        graph += f"afade=t=out:st={_num(request.duration_s - fade_out)}:d={_num(fade_out)}[out]"
        return self._graph_argv(graph, request, dest)

    def _sfx_argv(self, request: GenerationRequest, plan: SfxPlan, dest: Path) -> list[str]:
        rate = request.sample_rate
        total = _exact_samples(request.duration_s, rate)
        lowpass = min(plan.lowpass_hz, rate // 2 - 100)
        length = _num(request.duration_s + 0.1)
        graph = (
            f"anoisesrc=c={plan.color}:seed={plan.noise_seed}:a={_num(plan.amplitude)}"
            f":r={rate}:d={length},"
            f"highpass=f={plan.highpass_hz},lowpass=f={lowpass},lowpass=f={lowpass}[noise];"
            # The gain curve is computed at a low rate and interpolated: evaluating the
            # expression per output sample would take longer than the rest of the render.
            f"aevalsrc=exprs='{sfx_envelope(plan, request.duration_s)}':s={ENVELOPE_RATE}"
            f":c=mono:d={length},aresample={rate}[env];"
            f"[noise][env]amultiply,apad=whole_len={total},atrim=end_sample={total}[out]"
        )
        return self._graph_argv(graph, request, dest)

    def _voice_argv(
        self, request: GenerationRequest, speech: Path, speech_s: float, dest: Path
    ) -> list[str]:
        rate = request.sample_rate
        total = _exact_samples(request.duration_s, rate)
        filters = []
        if speech_s > request.duration_s:
            ratio = speech_s / (request.duration_s * FIT_SHARE)
            filters += [f"atempo={_num(f)}" for f in atempo_chain(ratio)]
        filters += [f"aresample={rate}", f"apad=whole_len={total}", f"atrim=end_sample={total}"]
        return [
            self.ffmpeg.ffmpeg_bin, "-hide_banner", "-nostdin", "-nostats", "-y",
            "-loglevel", "error", "-i", media_path(speech), "-af", ",".join(filters),
            *self._output_args(request, dest),
        ]  # fmt: skip

    # -- running ----------------------------------------------------------------------------------

    @staticmethod
    def _remaining(deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProviderRejected(
                "the local generation ran out of time", provider=NAME,
                code=Code.PROVIDER_TIMEOUT,
            )  # fmt: skip
        return left

    async def _ffmpeg(self, argv: list[str], deadline: float) -> None:
        timeout = min(self.ffmpeg.timeout_s, self._remaining(deadline))
        try:
            await self.ffmpeg.run(argv, timeout_s=timeout)
        except FFmpegTimeout as exc:
            raise ProviderRejected(
                f"the local generation took more than {timeout:.0f}s", provider=NAME,
                provider_message=str(exc), code=Code.PROVIDER_TIMEOUT,
            ) from exc  # fmt: skip
        except FFmpegError as exc:
            raise ProviderRejected(
                "ffmpeg could not render the local generation", provider=NAME,
                provider_message=str(exc),
            ) from exc  # fmt: skip
        except PermanentError as exc:  # the binary is missing
            raise ProviderRejected(str(exc), provider=NAME, code=exc.code) from exc

    async def _voiceover(self, request: GenerationRequest, dest: Path, deadline: float) -> None:
        plan = plan_voice(request)
        async with self.ffmpeg.temp_workdir(VOICE_WORKDIR_PREFIX) as work:
            script, speech = work / "script.txt", work / "speech.wav"
            await asyncio.to_thread(script.write_text, request.text or "", "utf-8")
            argv = [
                self.espeak_bin, "-v", plan.voice, "-s", str(plan.speed_wpm),
                "-p", str(plan.pitch), "-b", "1", "-f", str(script), "-w", str(speech),
            ]  # fmt: skip
            timeout = min(self.ffmpeg.timeout_s, self._remaining(deadline))
            try:
                done = await runner.run(argv, timeout)
            except FFmpegTimeout as exc:
                raise ProviderRejected(
                    f"espeak-ng took more than {timeout:.0f}s", provider=NAME,
                    provider_message=str(exc), code=Code.PROVIDER_TIMEOUT,
                ) from exc  # fmt: skip
            except PermanentError as exc:  # espeak-ng is not installed
                msg = str(exc)
                raise ProviderRejected(msg, provider=NAME, code=exc.code) from exc
            if done.returncode != 0 or not speech.exists():
                raise ProviderRejected(
                    f"espeak-ng exited with status {done.returncode}", provider=NAME,
                    provider_message=done.stderr_tail(),
                )  # fmt: skip
            speech_s = await asyncio.to_thread(_wav_seconds, speech)
            await self._ffmpeg(self._voice_argv(request, speech, speech_s, dest), deadline)


def _wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate()
    except (wave.Error, EOFError, ZeroDivisionError) as exc:
        raise ProviderRejected(
            "espeak-ng wrote no readable speech", provider=NAME, provider_message=str(exc)
        ) from exc
