"""The local provider renders real audio with ffmpeg and espeak-ng: the right length, rate
and format, byte-identical for the same request, and sounding like what was asked for.
No servers needed; each render is a few seconds of audio."""

from __future__ import annotations

import json
import math
import re
from array import array
from pathlib import Path
from typing import Any

import pytest

from schemas.codes import Code
from services.audio_agent.providers.base import (
    Generated,
    GenerationRequest,
    ProviderRejected,
    Ticket,
)
from services.audio_agent.providers.local import LocalProvider, midi_hz, plan_music
from services.common.ffmpeg import FFmpeg, runner

pytestmark = pytest.mark.integration

FFMPEG = FFmpeg(timeout_s=60)
TOLERANCE_MS = 10


@pytest.fixture
def provider() -> LocalProvider:
    return LocalProvider(FFMPEG)


def req(kind: str, prompt: str = "", duration_s: float = 3.0, **kw: Any) -> GenerationRequest:
    return GenerationRequest(kind, "local", prompt, duration_s, **kw)  # type: ignore[arg-type]


async def render(
    provider: LocalProvider, request: GenerationRequest, dest: Path
) -> tuple[Path, Generated]:
    ticket = await provider.submit(request)
    # As after a crash: the saved ticket, read back from JSON.
    ticket = Ticket.from_json(json.loads(json.dumps(ticket.to_json())))
    generated = await provider.fetch(ticket, dest, deadline_s=60)
    assert generated.path == dest
    return dest, generated


async def decode(path: Path, rate: int) -> array:
    """What a listener hears: mono 16-bit samples, gapless (MP3 padding dropped)."""
    argv = ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-f", "s16le", "-ac", "1",
            "-ar", str(rate), "-"]  # fmt: skip
    done = await runner.run(argv, 30, capture_stdout=True)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) < runner.STDOUT_LIMIT  # not truncated
    return array("h", done.stdout)


def rms_db(samples: array, start_s: float, end_s: float, rate: int) -> float:
    window = samples[int(start_s * rate) : int(end_s * rate)]
    power = sum(x * x for x in window) / max(1, len(window))
    return 10 * math.log10(max(power, 1.0) / 32768**2)


def goertzel(samples: array, start: int, n: int, hz: float, rate: int) -> float:
    """Power at ``hz`` over a Hann-windowed stretch of ``n`` samples."""
    k = 2 * math.cos(2 * math.pi * hz / rate)
    s1 = s2 = 0.0
    for i, x in enumerate(samples[start : start + n]):
        w = 0.5 - 0.5 * math.cos(2 * math.pi * i / n)
        s1, s2 = x * w + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


def spectrum(samples: array, at_s: float, freqs: list[float], rate: int) -> list[float]:
    start, n = int(at_s * rate), 4096
    return [goertzel(samples, start, n, f, rate) for f in freqs]


# -- length, rate, format, determinism ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "prompt", "duration_s", "fmt", "rate"),
    [
        ("music", "calm piano by the sea", 3.3, "mp3", 44100),
        ("music", "fast upbeat chase", 4.0, "wav", 22050),  # loops its cycle
        ("sfx", "rain on a window", 2.5, "mp3", 48000),
        ("sfx", "a door slams", 2.0, "wav", 44100),
        ("voiceover", "", 3.7, "mp3", 44100),
        ("voiceover", "", 2.0, "wav", 16000),
    ],
)
async def test_renders_the_right_length_rate_and_format(
    provider: LocalProvider, tmp_path: Path, kind: str, prompt: str, duration_s: float,
    fmt: str, rate: int,
) -> None:  # fmt: skip
    text = "This is the local voice, reading a short line." if kind == "voiceover" else None
    request = req(kind, prompt, duration_s, format=fmt, sample_rate=rate, seed=1, text=text)
    path, generated = await render(provider, request, tmp_path / f"out.{fmt}")
    assert generated.content_type == ("audio/mpeg" if fmt == "mp3" else "audio/wav")
    assert (generated.continuation_state is not None) == (kind == "music")

    probe = await FFMPEG.probe(path)
    assert probe.codec == ("mp3" if fmt == "mp3" else "pcm_s16le")
    assert probe.format_name == fmt
    assert (probe.sample_rate, probe.channels) == (rate, 1)
    if fmt == "mp3":
        # ffprobe's format duration counts the encoder's padding; what is heard is the
        # packets less the gapless padding (the LAME tag), as registration measures it.
        packets = await FFMPEG.packet_index(path)
        padding_ms = (packets.skip_samples + packets.discard_samples) * 1000 / rate
        heard_ms = packets.end_ms - padding_ms
    else:
        heard_ms = probe.duration_ms or 0
    assert abs(heard_ms - duration_s * 1000) <= TOLERANCE_MS
    samples = await decode(path, rate)
    assert abs(len(samples) * 1000 / rate - duration_s * 1000) <= TOLERANCE_MS
    assert rms_db(samples, 0, duration_s, rate) > -45  # not silence


@pytest.mark.parametrize(
    ("kind", "prompt", "text"),
    [
        ("music", "dark mysterious strings", None),
        ("sfx", "howling wind", None),
        ("voiceover", "", "Same words, same sound."),
    ],
)
async def test_same_request_same_bytes(
    provider: LocalProvider, tmp_path: Path, kind: str, prompt: str, text: str | None
) -> None:
    request = req(kind, prompt, 2.5, seed=42, text=text)
    a, ga = await render(provider, request, tmp_path / "a.mp3")
    b, gb = await render(provider, request, tmp_path / "b.mp3")
    assert a.read_bytes() == b.read_bytes()
    assert ga.continuation_state == gb.continuation_state
    # No versioned encoder tag (bit-exact mode writes a bare "Lavf" in the LAME header).
    assert re.search(rb"Lav[fc]\d", a.read_bytes()) is None
    assert not a.read_bytes().startswith(b"ID3")  # no metadata


@pytest.mark.parametrize(
    ("kind", "prompt", "other"),
    [
        ("music", "dark mysterious strings", {"seed": 43}),
        ("music", "dark mysterious strings", {"prompt": "bright happy bells"}),
        ("sfx", "rain", {"seed": 43}),
        ("sfx", "rain", {"prompt": "explosion"}),
        ("voiceover", "", {"text": "Other words, other sound."}),
    ],
)
async def test_a_different_seed_or_prompt_sounds_different(
    provider: LocalProvider, tmp_path: Path, kind: str, prompt: str, other: dict[str, Any]
) -> None:
    base = req(kind, prompt, 2.0, seed=42, text="Same words." if kind == "voiceover" else None)
    a, _ = await render(provider, base, tmp_path / "a.wav")
    changed = GenerationRequest(**{**base.__dict__, **other})
    b, _ = await render(provider, changed, tmp_path / "b.wav")
    assert (await decode(a, 44100)) != (await decode(b, 44100))


async def test_past_the_deadline_the_render_is_killed(
    provider: LocalProvider, tmp_path: Path
) -> None:
    ticket = await provider.submit(req("music", "epic", 600.0, seed=1))
    with pytest.raises(ProviderRejected) as err:
        await provider.fetch(ticket, tmp_path / "long.mp3", deadline_s=0.05)
    assert err.value.code == Code.PROVIDER_TIMEOUT
    assert not (tmp_path / "long.mp3").exists()


# -- what it sounds like --------------------------------------------------------------------------


async def test_music_is_chords_not_a_beep(provider: LocalProvider, tmp_path: Path) -> None:
    request = req("music", "calm ambient pad", 4.0, seed=5, format="wav")
    path, generated = await render(provider, request, tmp_path / "m.wav")
    samples = await decode(path, 44100)
    assert rms_db(samples, 0, 4.0, 44100) > -30

    plan = plan_music(request)
    semitones = [midi_hz(n) for n in range(33, 85)]  # A1 .. C#6
    power = spectrum(samples, 0.4, semitones, 44100)
    loud = [f for f, p in zip(semitones, power, strict=True) if p > max(power) / 100]
    assert len(loud) >= 4  # several notes and partials, not one sine
    # The first chord's three notes are all there.
    notes = [midi_hz(n) for n in plan.chord_notes(plan.chords()[0])]
    at = spectrum(samples, 0.4, notes, 44100)
    assert min(at) > max(power) / 30
    # And the harmony moves on: the second chord is not the first.
    second = [midi_hz(n) for n in plan.chord_notes(plan.chords()[1])]
    assert set(second) != set(notes)
    later = spectrum(samples, plan.chord_s + 0.4, second, 44100)
    assert min(later) > max(spectrum(samples, plan.chord_s + 0.4, semitones, 44100)) / 30
    assert generated.continuation_state == plan.state_after(4.0)


async def test_continuation_keeps_key_and_tempo(provider: LocalProvider, tmp_path: Path) -> None:
    first = req("music", "dark slow piano", 3.0, seed=8, format="wav")
    _, g1 = await render(provider, first, tmp_path / "1.wav")
    state = g1.continuation_state
    assert state is not None
    second = req("music", "a brighter morning", 3.0, seed=9, format="wav",
                 continuation_state=state)  # fmt: skip
    path, g2 = await render(provider, second, tmp_path / "2.wav")
    assert g2.continuation_state is not None
    for field in ("key", "mode", "tempo", "progression"):
        assert g2.continuation_state[field] == state[field]
    # Scene 2 opens on the chord after scene 1's last one.
    plan = plan_music(second)
    degree = state["progression"][state["next_chord"]]
    notes = [midi_hz(n) for n in plan.chord_notes(degree)]
    samples = await decode(path, 44100)
    semitones = [midi_hz(n) for n in range(33, 85)]
    assert (
        min(spectrum(samples, 0.3, notes, 44100))
        > max(spectrum(samples, 0.3, semitones, 44100)) / 30
    )


async def test_sfx_is_noise(provider: LocalProvider, tmp_path: Path) -> None:
    a, _ = await render(provider, req("sfx", "rain", 2.0, seed=1, format="wav"), tmp_path / "a.wav")
    b, _ = await render(provider, req("sfx", "rain", 2.0, seed=2, format="wav"), tmp_path / "b.wav")
    sa, sb = await decode(a, 44100), await decode(b, 44100)
    # Flat-ish spectrum across the band: no tone stands out (music's peaks are 100x).
    freqs = [400 * 1.07**i for i in range(28)]  # 400 Hz .. 2.5 kHz
    avg = [0.0] * len(freqs)
    for at in (0.4, 0.6, 0.8, 1.0, 1.2, 1.4):
        for i, p in enumerate(spectrum(sa, at, freqs, 44100)):
            avg[i] += p
    ordered = sorted(avg)
    assert ordered[-1] / ordered[len(ordered) // 2] < 8
    # Two seeds: unrelated noise.
    n = min(len(sa), len(sb))
    dot = sum(x * y for x, y in zip(sa[:n], sb[:n], strict=True))
    norm = math.sqrt(sum(x * x for x in sa[:n]) * sum(y * y for y in sb[:n]))
    assert abs(dot / norm) < 0.1


async def test_an_explosion_bursts_and_decays(provider: LocalProvider, tmp_path: Path) -> None:
    path, _ = await render(provider, req("sfx", "big explosion", 3.0, seed=1), tmp_path / "e.mp3")
    samples = await decode(path, 44100)
    assert rms_db(samples, 0, 0.3, 44100) > -30
    assert rms_db(samples, 0, 0.3, 44100) - rms_db(samples, 2.0, 2.9, 44100) > 15


async def test_short_speech_is_padded_at_the_end(provider: LocalProvider, tmp_path: Path) -> None:
    request = req("voiceover", duration_s=5.0, text="Hello and welcome.", format="wav")
    path, _ = await render(provider, request, tmp_path / "v.wav")
    samples = await decode(path, 44100)
    assert rms_db(samples, 0.1, 0.9, 44100) > -35  # speech first
    assert rms_db(samples, 3.0, 5.0, 44100) < -80  # then silence


async def test_long_speech_is_sped_up_not_cut(provider: LocalProvider, tmp_path: Path) -> None:
    text = (
        "In this episode we walk along the river from its source in the hills, through "
        "three old market towns, down to the harbour where it finally meets the sea."
    )
    natural, _ = await render(provider, req("voiceover", duration_s=20.0, text=text,
                                            format="wav"), tmp_path / "n.wav")  # fmt: skip
    ns = await decode(natural, 44100)
    loud = [i for i in range(0, len(ns), 441) if abs(ns[i]) > 300]
    spoken_s = (loud[-1] - loud[0]) / 44100
    assert 5.0 < spoken_s < 15.0  # espeak-ng at its own pace

    fitted, _ = await render(provider, req("voiceover", duration_s=3.0, text=text,
                                           format="wav"), tmp_path / "f.wav")  # fmt: skip
    fs = await decode(fitted, 44100)
    assert len(fs) == 3 * 44100
    # The whole text is in there, faster: speech runs almost to the end of the scene,
    # and the very end is the last word's trailing silence, not a word cut in half.
    assert rms_db(fs, 2.0, 2.7, 44100) > -45
    assert rms_db(fs, 2.98, 3.0, 44100) < -50


async def test_voice_options_change_the_speech(provider: LocalProvider, tmp_path: Path) -> None:
    text = "Options change the voice."
    plain, _ = await render(provider, req("voiceover", duration_s=4.0, text=text),
                            tmp_path / "p.mp3")  # fmt: skip
    fast, _ = await render(provider, req("voiceover", duration_s=4.0, text=text,
                                         options={"speed": 320, "pitch": 80}),
                           tmp_path / "f.mp3")  # fmt: skip
    assert plain.read_bytes() != fast.read_bytes()
    p, f = await decode(plain, 44100), await decode(fast, 44100)

    def spoken(s: array) -> int:
        return sum(1 for i in range(0, len(s), 441) if abs(s[i]) > 300)

    assert spoken(f) < spoken(p)
