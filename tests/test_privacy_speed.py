"""The personal-data scan's shortcuts give the same verdict as the full scan.

:func:`firegrid.maps.privacy.personal_by_content` skips numeric columns whose numbers are too
short for any phone or ID number, and patterns whose shortest match is longer than every value
or whose required character is absent. Each shortcut is checked here against the patterns'
own structure (read with the regular-expression parser) and against a plain full scan written
here, on values at and around the boundaries.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from firegrid.maps.privacy import (
    NUMBER_MIN_DIGITS,
    PATTERN_MIN_CHARS,
    PATTERN_REQUIRED_CHAR,
    PERSONAL_VALUE_PATTERNS,
    personal_by_content,
)

sre = pytest.importorskip("re._parser", reason="needs CPython's regular-expression parser")


def _full_scan(values: pd.Series) -> bool:
    """The scan without shortcuts: every distinct value written out, every pattern searched."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=float, na_value=np.nan)
        texts = [str(int(x)) for x in v if np.isfinite(x) and x == np.trunc(x) and abs(x) < 1e18]
    else:
        texts = [str(x) for x in values.dropna().tolist()]
    return any(p.search(t) for t in texts for p in PERSONAL_VALUE_PATTERNS.values())


def _min_width(pattern: re.Pattern[str]) -> int:
    return sre.parse(pattern.pattern).getwidth()[0]


def test_every_pattern_has_its_shortest_match_recorded():
    assert set(PATTERN_MIN_CHARS) == set(PERSONAL_VALUE_PATTERNS)
    for name, pattern in PERSONAL_VALUE_PATTERNS.items():
        assert PATTERN_MIN_CHARS[name] == _min_width(pattern), name


def test_required_characters_are_mandatory_literals():
    for name, char in PATTERN_REQUIRED_CHAR.items():
        top_level = list(sre.parse(PERSONAL_VALUE_PATTERNS[name].pattern))
        assert (sre.LITERAL, ord(char)) in top_level, name


def test_no_pattern_matches_across_a_line_break():
    # Values are joined with "\n" and scanned at once: a match must lie inside one value.
    # Every known match, cut at every place, matches only where one of its halves does alone.
    for name, pattern in PERSONAL_VALUE_PATTERNS.items():
        for whole in ("+86 138-1234-5678", "(021) 1234 5678", "a.b@c-d.cn", "11010119900307123X"):
            for cut in range(len(whole) + 1):
                left, right = whole[:cut], whole[cut:]
                alone = bool(pattern.search(left) or pattern.search(right))
                assert bool(pattern.search(f"{left}\n{right}")) == alone, (name, left, right)


def test_numbers_need_the_minimum_digits():
    # Patterns that can match a number written out (digits, maybe a leading "-") need at least
    # NUMBER_MIN_DIGITS characters; the others need a character a number never has.
    for name, pattern in PERSONAL_VALUE_PATTERNS.items():
        if name in PATTERN_REQUIRED_CHAR:
            assert not PATTERN_REQUIRED_CHAR[name].isdigit() and PATTERN_REQUIRED_CHAR[name] != "-"
        else:
            assert _min_width(pattern) >= NUMBER_MIN_DIGITS, name
    # The shortest match is reached: an 11-digit mobile number.
    assert PERSONAL_VALUE_PATTERNS["mobile"].fullmatch("13812345678")
    assert len("13812345678") == NUMBER_MIN_DIGITS


def _boundary_numbers() -> list[int]:
    """Numbers at every digit count up to 18: powers of ten, all-nines, and mobile-like ones."""
    out = []
    for digits in range(1, 19):
        low, high = 10 ** (digits - 1), 10**digits - 1
        out += [low, high, low + 1, high - 1]
        for prefix in range(13, 20):  # 1[3-9]: the start of every mobile number
            out.append(int(str(prefix).ljust(digits, "5")[:digits]) if digits >= 2 else prefix % 10)
    out += [10**18, 110101199003071234, 110101900307123]  # 19 digits; 18- and 15-digit IDs
    return out


@pytest.mark.parametrize("number", _boundary_numbers())
def test_integer_and_float_columns_match_the_full_scan(number):
    for value in (number, -number):
        column = pd.Series([7, value, 42], dtype="int64")
        assert personal_by_content(column) == _full_scan(column), value
        gaps = pd.Series([7, value, None], dtype="Int64")
        assert personal_by_content(gaps) == _full_scan(gaps), value
        floats = pd.Series([7.5, float(value), np.nan, 3.0])
        assert personal_by_content(floats) == _full_scan(floats), value


def test_the_minimum_digits_are_still_caught():
    smallest = 13000000000  # 11 digits, the fewest a mobile number has
    for column in (
        pd.Series([1, smallest]),
        pd.Series([1, -smallest]),
        pd.Series([1.5, float(smallest), np.nan]),
        pd.Series([1, smallest, None], dtype="Int64"),
    ):
        assert personal_by_content(column), column.tolist()
    below = pd.Series([1, 10**10 - 1, -(10**10 - 1)])  # 10 digits: cannot be one
    assert not personal_by_content(below)
    assert not _full_scan(below)


def test_extreme_numbers_and_non_finite_floats():
    big = np.iinfo(np.int64)
    for column in (
        pd.Series([big.min, big.max]),
        pd.Series([np.inf, -np.inf, np.nan, 1.0]),
        pd.Series([np.nan, np.nan]),
        pd.Series([], dtype="int64"),
        pd.Series([2.0**60, -(2.0**63)]),
        pd.Series([np.iinfo(np.uint64).max], dtype="uint64"),
    ):
        assert personal_by_content(column) == _full_scan(column), column.tolist()


@pytest.mark.parametrize(
    "text",
    [
        "a@b.c",  # e-mail, 5 characters: the shortest
        "13812345678",  # mobile, 11
        "021-1234567",  # landline, 11
        "110101900307123",  # 15-digit ID
        "11010119900307123X",  # 18-digit ID
    ],
)
def test_text_of_exactly_the_shortest_match_is_caught(text):
    assert personal_by_content(pd.Series(["x", text, None], dtype=object))
    # One character shorter cannot match, with or without the shortcut.
    shorter = pd.Series(["x", text[:-1]], dtype=object)
    assert personal_by_content(shorter) == _full_scan(shorter) is False


def test_random_text_columns_match_the_full_scan():
    rng = np.random.default_rng(11)
    pieces = ["13812345678", "021-1234 5678", "a@b.cn", "110101199003071234", "x", "123", "@", ""]
    for _ in range(300):
        n = int(rng.integers(1, 6))
        values = ["".join(rng.choice(pieces, size=int(rng.integers(1, 3)))) for _ in range(n)]
        values = [v[: int(rng.integers(0, len(v) + 1))] for v in values]  # cut at random
        column = pd.Series(values, dtype=object)
        assert personal_by_content(column) == _full_scan(column), values
