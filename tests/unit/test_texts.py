"""Texts: lone surrogates found with their path; control characters stripped from shown text."""

from __future__ import annotations

import json

import pytest

from amtd.model.texts import clean_text, find_unencodable, is_encodable, strip_controls


def test_lone_surrogates_are_found_with_their_path() -> None:
    decoded = json.loads('{"a": [1, {"b": "ok"}, {"c\\ud800": 1}], "d": "\\udfff"}')
    assert find_unencodable(decoded) == "a[2].c\\ud800"
    assert find_unencodable({"d": "\udfff", "e": "\U0001f600"}) == "d"
    assert find_unencodable({"e": "\U0001f600 é", "n": None, "x": 1.5}) is None
    assert find_unencodable("\ud83d") == "value"
    assert not is_encodable("\ud83d") and is_encodable("\U0001f600")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("line\nforged INFO line", "lineforged INFO line"),
        ("red \x1b[31mALERT\x1b[0m done", "red ALERT done"),
        ("title \x1b]0;pwned\x07 end", "title  end"),
        ("bidi \u202eevil\u202c \u2066x\u2069", "bidi evil x"),
        ("c1 \x85\x9b31m nul \x00 del \x7f", "c1 31m nul  del "),
        ("tab\tstays, ünïcode stays", "tab\tstays, ünïcode stays"),
        ("lone \ud800", "lone ?"),
    ],
)
def test_strip_controls(text: str, shown: str) -> None:
    assert strip_controls(text) == shown


def test_clean_text_cuts_after_stripping() -> None:
    assert clean_text("\x1b[1m" + "x" * 20, 10) == "x" * 9 + "…"
    assert clean_text("short\r\n", 10) == "short"
