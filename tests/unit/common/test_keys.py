from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common import keys
from services.common.errors import PermanentError
from services.common.keys import (
    InvalidKeyPart,
    audio_key,
    clip_key,
    episode_key,
    render_key,
    video_key,
)

pytestmark = pytest.mark.unit

TENANT = "acme"


def _episode_key(episode_id: str, filename: str) -> str:
    return episode_key(TENANT, episode_id, filename)


TWO_PART_BUILDERS: list[tuple[Callable[[str, str], str], str]] = [
    (audio_key, "audio/"),
    (video_key, "video/"),
    (render_key, "renders/"),
    (_episode_key, "episodes/acme/"),
]

# One value per rule of validate_part; path-like text in general is the properties' job.
BAD_PARTS: list[object] = [
    None,  # not a string
    "",  # empty
    "x" * 129,  # too long
    "../etc",  # a character outside the alphabet
    "..",  # dots only
    "-rf",  # would read as an option
]


def test_layout() -> None:
    assert audio_key("job-1", "speech.mp3") == "audio/job-1/speech.mp3"
    assert video_key("job-1", "final.mp4") == "video/job-1/final.mp4"
    assert render_key("job_2", "out.v1.wav") == "renders/job_2/out.v1.wav"
    assert episode_key("acme", "ep42", "episode.m4a") == "episodes/acme/ep42/episode.m4a"
    assert clip_key(TENANT, "ep42", 0, 1500, "mp3") == "audio_clips/acme/ep42/0-1500.mp3"
    assert clip_key(TENANT, "ep42", 1000, 2000, "json") == "audio_clips/acme/ep42/1000-2000.json"


# Keys take a wider alphabet than ids: edges of what a key part may be.
@pytest.mark.parametrize("good", ["A.b-c_d", "x" * 128, ".hidden", "a..b"])
@pytest.mark.parametrize(("build", "prefix"), TWO_PART_BUILDERS)
def test_good_parts(build: Callable[[str, str], str], prefix: str, good: str) -> None:
    assert build(good, good) == f"{prefix}{good}/{good}"


@pytest.mark.parametrize("bad", BAD_PARTS)
@pytest.mark.parametrize(("build", "prefix"), TWO_PART_BUILDERS)
def test_bad_parts(build: Callable[[str, str], str], prefix: str, bad: object) -> None:
    with pytest.raises(InvalidKeyPart) as first:
        build(bad, "ok.mp3")  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyPart):
        build("ok", bad)  # type: ignore[arg-type]
    assert first.value.code == "invalid_id"
    assert isinstance(first.value, PermanentError)


@pytest.mark.parametrize("bad", BAD_PARTS)
def test_bad_episode_or_tenant_in_clip(bad: object) -> None:
    with pytest.raises(InvalidKeyPart):
        clip_key(TENANT, bad, 0, 10, "mp3")  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyPart):
        clip_key(bad, "ep", 0, 10, "mp3")  # type: ignore[arg-type]


def test_two_tenants_episodes_of_one_id_never_share_an_object() -> None:
    assert clip_key("acme", "ep-1", 0, 10, "mp3") != clip_key("other", "ep-1", 0, 10, "mp3")
    assert episode_key("acme", "ep-1", "s.mp3") != episode_key("other", "ep-1", "s.mp3")


@pytest.mark.parametrize("bad", [-1, True, False, 1.0, "1", None, 2**70 * -1])
def test_bad_offsets(bad: object) -> None:
    with pytest.raises(InvalidKeyPart):
        clip_key(TENANT, "ep", bad, 10_000, "mp3")  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyPart):
        clip_key(TENANT, "ep", 0, bad, "mp3")  # type: ignore[arg-type]


def test_clip_end_after_start() -> None:
    with pytest.raises(InvalidKeyPart):
        clip_key(TENANT, "ep", 10, 10, "mp3")
    with pytest.raises(InvalidKeyPart):
        clip_key(TENANT, "ep", 20, 10, "mp3")
    assert clip_key(TENANT, "ep", 0, 2**40, "mp3") == f"audio_clips/acme/ep/0-{2**40}.mp3"


@pytest.mark.parametrize("bad", ["", "MP3", ".mp3", "exe", "mp3/", "mp3 ", "../mp3", None, 3])
def test_bad_ext(bad: object) -> None:
    with pytest.raises(InvalidKeyPart):
        clip_key(TENANT, "ep", 0, 10, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("ext", sorted(keys.ALLOWED_EXTS))
def test_allowed_exts(ext: str) -> None:
    assert clip_key(TENANT, "ep", 0, 10, ext).endswith(f"/0-10.{ext}")


def _assert_confined(key: str, prefix: str, parts: list[str]) -> None:
    assert key.startswith(prefix)
    segments = key[len(prefix) :].split("/")
    assert segments == parts
    for seg in segments:
        assert seg not in ("", ".", "..")
        assert not seg.startswith("-")
        assert seg.isascii() and seg.isprintable()
        assert "\\" not in seg


@given(a=st.text(max_size=140), b=st.text(max_size=140))
@pytest.mark.parametrize(("build", "prefix"), TWO_PART_BUILDERS)
def test_generated_text_never_escapes(
    build: Callable[[str, str], str], prefix: str, a: str, b: str
) -> None:
    try:
        key = build(a, b)
    except InvalidKeyPart:
        return
    _assert_confined(key, prefix, [a, b])


_key_alphabet = st.sampled_from(list("abcXYZ019._-/\\\x00 \n"))


@given(a=st.text(_key_alphabet, max_size=12), b=st.text(_key_alphabet, max_size=12))
@pytest.mark.parametrize(("build", "prefix"), TWO_PART_BUILDERS)
def test_generated_path_like_text_never_escapes(
    build: Callable[[str, str], str], prefix: str, a: str, b: str
) -> None:
    try:
        key = build(a, b)
    except InvalidKeyPart:
        return
    _assert_confined(key, prefix, [a, b])


good_parts = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,40}", fullmatch=True).map(
    lambda p: p if p.strip(".") else f"x{p}"
)


@given(
    episode=good_parts,
    start=st.integers(min_value=0, max_value=10**12),
    length=st.integers(min_value=1, max_value=10**9),
    ext=st.sampled_from(sorted(keys.ALLOWED_EXTS)),
    accurate=st.booleans(),
)
def test_valid_clip_requests_have_exactly_one_confined_key(
    episode: str, start: int, length: int, ext: str, accurate: bool
) -> None:
    key = clip_key(TENANT, episode, start, start + length, ext, accurate=accurate)
    variant = "-accurate" if accurate else ""
    _assert_confined(
        key, "audio_clips/acme/", [episode, f"{start}-{start + length}{variant}.{ext}"]
    )
    # Different ranges, formats or cut modes never share an object.
    assert key != clip_key(TENANT, episode, start, start + length + 1, ext, accurate=accurate)
    assert key != clip_key(TENANT, episode, start, start + length, ext, accurate=not accurate)


@given(
    episode=good_parts,
    start=st.integers(min_value=0, max_value=10**12),
    back=st.integers(min_value=0, max_value=10**6),
    ext=st.sampled_from(sorted(keys.ALLOWED_EXTS)),
)
def test_empty_or_reversed_ranges_never_get_a_key(
    episode: str, start: int, back: int, ext: str
) -> None:
    with pytest.raises(InvalidKeyPart):
        clip_key(TENANT, episode, start, start - back, ext)


@pytest.mark.parametrize(
    ("key", "under"),
    [
        ("ingest/acme/ep.mp3", True),
        ("ingest/acme/2026/ep.mp3", True),
        ("ingest/acme2/ep.mp3", False),
        ("ingest/acm/ep.mp3", False),
        ("ingest/acme", False),
        ("ingest/acme/", False),
        ("ingest/acme//ep.mp3", False),
        ("ingest/acme/../acme2/ep.mp3", False),
        ("ingest/acme/./ep.mp3", False),
        ("other/ingest/acme/ep.mp3", False),
    ],
)
def test_ingest_keys_are_compared_by_whole_segments(key: str, under: bool) -> None:
    assert keys.is_under(key, keys.ingest_prefix("acme")) is under
