"""Concat lists: quoted per the demuxer's rules, and never carrying an input's key."""

from __future__ import annotations

import pytest

from services.merger.concat_list import concat_list, local_name, quote

pytestmark = pytest.mark.unit


def test_quotes_are_escaped_the_demuxers_way() -> None:
    assert quote("in-000.mp4") == "'in-000.mp4'"
    assert quote("it's.mp4") == "'it'\\''s.mp4'"
    assert quote("a'b'c") == "'a'\\''b'\\''c'"


@pytest.mark.parametrize("bad", ["a\nfile '/etc/passwd'", "a\rb", "a\x00b", "a\x7fb"])
def test_a_line_break_cannot_be_quoted(bad: str) -> None:
    with pytest.raises(ValueError):
        quote(bad)


def test_a_list_names_one_file_per_line() -> None:
    text = concat_list(["in-000.mp4", "in-001.mp4"])
    assert text == "ffconcat version 1.0\nfile 'in-000.mp4'\nfile 'in-001.mp4'\n"
    with pytest.raises(ValueError):
        concat_list([])


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("videos/a.mp4", "in-003.mp4"),
        ("videos/A.MOV", "in-003.mov"),
        ("x/evil' file '/etc/passwd'.mp4", "in-003.mp4"),
        ("x/evil.mp4' directive", "in-003"),
        ("x/no-extension", "in-003"),
        ("x/odd.ext with space", "in-003"),
        ("x/../../etc/passwd", "in-003"),
    ],
)
def test_inputs_are_downloaded_under_our_own_names(key: str, name: str) -> None:
    assert local_name(3, key) == name
    # Whatever the key, its list line is one plain directive.
    line = concat_list([local_name(3, key)]).splitlines()[1]
    assert line == f"file '{name}'"
