"""The local provider's choices and checks: pure functions, no audio rendered (the
renders are in tests/integration/audio_agent/providers/test_local.py)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from schemas.codes import Code
from services.audio_agent.providers.base import (
    GenerationRequest,
    InvalidGeneration,
    Provider,
    ProviderRejected,
    Ticket,
)
from services.audio_agent.providers.local import (
    MAX_DURATION_S,
    LocalProvider,
    atempo_chain,
    music_expression,
    plan_music,
    plan_sfx,
    plan_voice,
    request_from_data,
    words_of,
)
from services.common.ffmpeg import FFmpeg

pytestmark = pytest.mark.unit


def music(prompt: str = "calm piano", seed: int | None = 7, **kw: Any) -> GenerationRequest:
    return GenerationRequest("music", "local", prompt, kw.pop("duration_s", 8.0), seed=seed, **kw)


def sfx(prompt: str, seed: int | None = 7, **kw: Any) -> GenerationRequest:
    return GenerationRequest("sfx", "local", prompt, kw.pop("duration_s", 5.0), seed=seed, **kw)


def voice(text: str | None = "Hello there.", **kw: Any) -> GenerationRequest:
    return GenerationRequest("voiceover", "local", "", kw.pop("duration_s", 5.0), text=text, **kw)


@pytest.fixture
def provider() -> LocalProvider:
    return LocalProvider(FFmpeg())


# -- check ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "says"),
    [
        (music("   \n\t"), "needs a prompt"),
        (sfx(""), "needs a prompt"),
        (voice(None), "needs text"),
        (voice("   "), "needs text"),
        (voice("x" * 20_001), "at most"),
        (music(duration_s=0), "duration_s"),
        (music(duration_s=-3), "duration_s"),
        (music(duration_s=MAX_DURATION_S + 0.01), "duration_s"),
        (music(duration_s=math.nan), "duration_s"),
        (music(duration_s=math.inf), "duration_s"),
        (replace(music(), kind="podcast"), "unknown audio kind"),  # type: ignore[arg-type]
        (replace(music(), format="ogg"), "format"),  # type: ignore[arg-type]
        (replace(music(), model="meta/musicgen"), "no model"),
        (replace(music(), model="fal-ai/stable-audio"), "no model"),
        (music(sample_rate=44000), "sample_rate"),  # not an MP3 rate
        (music(sample_rate=4000, format="wav"), "sample_rate"),
        (replace(music(), seed="7"), "seed"),  # type: ignore[arg-type]
        (voice(options={"voice": "../../etc/passwd"}), "voice"),
        (voice(options={"voice": "-w/tmp/x"}), "voice"),
        (voice(options={"speed": 5000}), "speed"),
        (voice(options={"speed": "fast"}), "speed"),
        (voice(options={"pitch": 150}), "pitch"),
        (voice(options={"speed": math.nan}), "speed"),
        (voice(options={"speed": math.inf}), "speed"),
        (music(continuation_state=["not", "a", "dict"]), "continuation_state"),
        (music(options={"x": object()}), "JSON"),
    ],
)
def test_check_rejects(provider: LocalProvider, request_: GenerationRequest, says: str) -> None:
    with pytest.raises(InvalidGeneration) as err:
        provider.check(request_)
    assert says in str(err.value)
    assert err.value.code == Code.INVALID_AUDIO_REQUEST
    assert err.value.public and not err.value.retryable
    assert err.value.provider == "local"


@pytest.mark.parametrize(
    "request_",
    [
        music(),
        replace(music(), model=None),  # type: ignore[arg-type]
        replace(music(), model=""),
        music(duration_s=MAX_DURATION_S, seed=None),
        music(duration_s=0.01, format="wav", sample_rate=96000),
        sfx("rain", sample_rate=48000),
        voice(),  # a voiceover needs no prompt
        voice(options={"voice": "en-gb", "speed": 220, "pitch": 30, "voice_id": "ignored"}),
        music(continuation_state={"key": 3}),
    ],
)
def test_check_accepts(provider: LocalProvider, request_: GenerationRequest) -> None:
    provider.check(request_)


def test_is_a_provider(provider: LocalProvider) -> None:
    p: Provider = provider
    assert p.name == "local"


# -- tickets --------------------------------------------------------------------------------------


async def test_submit_returns_a_resumable_ticket(provider: LocalProvider) -> None:
    request = music("dark ambient drone", seed=3, continuation_state={"key": 2, "tempo": 90})
    ticket = await provider.submit(request)
    assert ticket.provider == "local"
    # A crash between submit and fetch: the ticket goes through JSON and comes back.
    saved = Ticket.from_json(json.loads(json.dumps(ticket.to_json())))
    assert saved == ticket
    assert request_from_data(saved.data) == request
    assert (await provider.submit(request)).request_id == ticket.request_id
    assert (await provider.submit(replace(request, seed=4))).request_id != ticket.request_id
    assert (await provider.submit(replace(request, duration_s=9))).request_id != ticket.request_id


async def test_submit_checks_first(provider: LocalProvider) -> None:
    with pytest.raises(InvalidGeneration):
        await provider.submit(voice(None))


async def test_fetch_refuses_foreign_and_malformed_tickets(
    provider: LocalProvider, tmp_path: Path
) -> None:
    with pytest.raises(ProviderRejected):
        await provider.fetch(Ticket("fal", "abc", {}), tmp_path / "x.mp3", deadline_s=10)
    with pytest.raises(InvalidGeneration):
        await provider.fetch(Ticket("local", "abc", {"kind": "music"}), tmp_path / "x.mp3",
                             deadline_s=10)  # fmt: skip
    assert not (tmp_path / "x.mp3").exists()


async def test_fetch_past_its_deadline_is_a_provider_timeout(
    provider: LocalProvider, tmp_path: Path
) -> None:
    ticket = await provider.submit(music())
    with pytest.raises(ProviderRejected) as err:
        await provider.fetch(ticket, tmp_path / "x.mp3", deadline_s=0)
    assert err.value.code == Code.PROVIDER_TIMEOUT
    assert not (tmp_path / "x.mp3").exists()


async def test_cancel_is_a_no_op(provider: LocalProvider) -> None:
    await provider.cancel(await provider.submit(music()))


async def test_missing_espeak_is_a_permanent_rejection(tmp_path: Path) -> None:
    provider = LocalProvider(FFmpeg(), espeak_bin="/nonexistent/espeak-ng")
    ticket = await provider.submit(voice())
    with pytest.raises(ProviderRejected) as err:
        await provider.fetch(ticket, tmp_path / "v.mp3", deadline_s=10)
    assert "espeak-ng" in str(err.value)
    assert not err.value.retryable


# -- music choices --------------------------------------------------------------------------------


def test_words_are_normalised() -> None:
    assert words_of("  Dark,  SLOW\tpiano!! ") == ("dark", "slow", "piano")
    assert plan_music(music("Dark, SLOW piano!")) == plan_music(music("dark slow piano"))


def test_music_choices_are_deterministic() -> None:
    assert plan_music(music("a rainy city at night")) == plan_music(music("a rainy city at night"))


def test_music_choices_depend_on_the_seed_and_the_words() -> None:
    by_seed = {plan_music(music("a rainy city at night", seed=s)) for s in range(24)}
    assert len({(p.key, p.mode) for p in by_seed}) >= 6
    assert len({p.progression for p in by_seed}) >= 3
    by_prompt = {plan_music(music(f"scene number {n}", seed=1)) for n in range(24)}
    assert len({p.key for p in by_prompt}) >= 6
    assert len({p.tempo for p in by_prompt}) >= 6


@pytest.mark.parametrize("seed", range(10))
def test_mood_words_pick_the_mode_and_tempo(seed: int) -> None:
    dark = plan_music(music("dark sad slow ambient", seed=seed))
    assert dark.mode == "minor"
    assert 60 <= dark.tempo <= 80
    happy = plan_music(music("happy upbeat fast", seed=seed))
    assert happy.mode == "major"
    assert 120 <= happy.tempo <= 150
    plain = plan_music(music("a walk through town", seed=seed))
    assert 84 <= plain.tempo <= 112
    assert not plan_music(music("ambient drone", seed=seed)).arpeggio


def test_chords_are_triads_of_the_key() -> None:
    plan = plan_music(music("happy", seed=1))
    major = {0, 2, 4, 5, 7, 9, 11}
    for degree in range(7):
        notes = plan.chord_notes(degree)
        assert len(set(notes)) == 3
        assert all((n - plan.key) % 12 in major for n in notes)
        assert min(notes) >= 36 and max(notes) <= 84
    root, third, fifth = plan.chord_notes(0)
    assert (third - root, fifth - root) == (4, 7)  # the tonic chord is major


def test_continuation_keeps_key_tempo_and_progression() -> None:
    first = plan_music(music("dark slow strings", seed=11))
    state = first.state_after(10.0)
    assert json.loads(json.dumps(state)) == state
    nxt = plan_music(music("happy fast brass fanfare", seed=99, continuation_state=state))
    assert (nxt.key, nxt.mode, nxt.tempo, nxt.progression) == (
        first.key,
        first.mode,
        first.tempo,
        first.progression,
    )
    assert nxt.start_chord == state["next_chord"]
    assert nxt.chords()[0] == first.progression[state["next_chord"]]
    # A chain of scenes walks on through the progression.
    third = plan_music(music("anything", seed=5, continuation_state=nxt.state_after(1.0)))
    assert third.start_chord == (nxt.start_chord + 1) % len(first.progression)


def test_next_chord_counts_chords_started() -> None:
    plan = plan_music(music("calm", seed=2))
    n = len(plan.progression)
    assert plan.next_chord(2 * plan.chord_s) == 2 % n
    assert plan.next_chord(2.5 * plan.chord_s) == 3 % n
    assert plan.next_chord(0.1) == 1 % n
    assert plan.next_chord(n * plan.chord_s) == 0


@pytest.mark.parametrize(
    "state",
    [{}, {"key": 99, "mode": "lydian", "tempo": "fast", "progression": [9, 9]}, {"key": True}],
)
def test_malformed_state_is_ignored(state: dict[str, Any]) -> None:
    assert plan_music(music(continuation_state=state)) == plan_music(music())


def test_expression_size_does_not_grow_with_duration() -> None:
    short = music_expression(plan_music(music("epic", duration_s=2)))
    long = music_expression(plan_music(music("epic", duration_s=600)))
    assert short == long
    assert len(short) < 4000
    # It sits in a quoted filter argument: nothing in it may end the argument.
    assert not set(short) & {"'", ":", "[", "]", "\\"}


def test_music_argv_loops_one_cycle(provider: LocalProvider, tmp_path: Path) -> None:
    request = music("epic", duration_s=600)
    argv = provider._music_argv(request, plan_music(request), tmp_path / "m.mp3")
    assert sum(len(a) for a in argv) < 5000
    graph = argv[argv.index("-filter_complex") + 1]
    assert "aloop=loop=-1" in graph
    assert f"atrim=end_sample={600 * 44100}" in graph
    assert argv[-3:] == ["-f", "mp3", str(tmp_path / "m.mp3")]
    for flag in ("-fflags", "-flags:a", "-map_metadata"):
        assert flag in argv


# -- sfx and voiceover choices --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "style", "color"),
    [
        ("heavy rain on a tin roof", "rain", "pink"),
        ("howling wind", "wind", "brown"),
        ("a distant explosion", "boom", "brown"),
        ("thunder storm", "boom", "brown"),
        ("knock on the door", "hit", "pink"),
        ("crowd murmur in a hall", "texture", "white"),
    ],
)
def test_sfx_style_from_the_prompt(prompt: str, style: str, color: str) -> None:
    plan = plan_sfx(sfx(prompt))
    assert (plan.style, plan.color) == (style, color)
    assert plan == plan_sfx(sfx(prompt))
    assert plan.noise_seed != plan_sfx(sfx(prompt, seed=8)).noise_seed
    assert 0 <= plan.noise_seed < 2**32
    assert plan.highpass_hz < plan.lowpass_hz


def test_voice_options() -> None:
    assert plan_voice(voice()).voice == "en-us"
    chosen = plan_voice(voice(options={"voice": "en-gb+f3", "speed": 200.0, "pitch": 20}))
    assert (chosen.voice, chosen.speed_wpm, chosen.pitch) == ("en-gb+f3", 200, 20)


@pytest.mark.parametrize("ratio", [0.3, 0.9, 1.0, 1.7, 2.0, 2.5, 5.0, 37.0])
def test_atempo_chain(ratio: float) -> None:
    factors = atempo_chain(ratio)
    assert math.isclose(math.prod(factors), ratio)
    assert all(0.5 <= f <= 2.0 for f in factors)
    assert atempo_chain(5.0) == [2.0, 2.0, 1.25]


def test_long_speech_is_sped_up_short_speech_padded(
    provider: LocalProvider, tmp_path: Path
) -> None:
    request = voice(duration_s=4.0, sample_rate=22050)

    def filters(speech_s: float) -> list[str]:
        argv = provider._voice_argv(request, tmp_path / "s.wav", speech_s, tmp_path / "o.mp3")
        return argv[argv.index("-af") + 1].split(",")

    padded = filters(3.0)
    assert not any(f.startswith("atempo") for f in padded)
    assert padded[-2:] == [f"apad=whole_len={4 * 22050}", f"atrim=end_sample={4 * 22050}"]
    sped = [float(f.split("=")[1]) for f in filters(10.0) if f.startswith("atempo")]
    assert len(sped) == 2  # 2.5x and a bit: chained, each at most 2
    assert 10.0 / 4.0 < math.prod(sped) < 10.0 / 4.0 * 1.05
