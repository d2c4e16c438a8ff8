"""The personal-data scan's shortcuts give the same verdict as the full scan.

:func:`firegrid.maps.privacy.personal_by_content` skips numeric columns whose numbers are too
short for any phone or ID number, and patterns whose shortest match is longer than every value
or whose required character is absent. Text columns are read through Arrow, and only values
long enough (in bytes, then characters), holding the required character and enough digits are
searched. Each shortcut is checked here against the patterns' own structure (read with the
regular-expression parser), against a plain full scan written here, and against the scan as it
was before the Arrow scan (kept here), on values at and around the boundaries.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from firegrid.maps import privacy
from firegrid.maps.privacy import (
    NUMBER_MIN_DIGITS,
    PATTERN_MIN_CHARS,
    PATTERN_MIN_DIGITS,
    PATTERN_REQUIRED_CHAR,
    PERSONAL_VALUE_PATTERNS,
    personal_by_content,
)
from tests._privacy_reference import text_scan

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


# --- The Arrow scan (text columns) and the number filters, against the scans they replace ---

TEXT_DTYPES = ("object", "str", "string[python]", "string[pyarrow]", "arrow_string", "category")


def _column(values: list, dtype: str) -> pd.Series:
    if dtype == "arrow_string":
        values = [None if v is None or v is pd.NA or v != v else v for v in values]
        return pd.Series(values, dtype=pd.ArrowDtype(pa.string()))
    return pd.Series(values, dtype=dtype)


def _digit_zeros() -> list[str]:
    """The zero of every run of ten decimal digits Python's ``\\d`` matches (ASCII, full-width…)."""
    return [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) == "Nd" and unicodedata.digit(chr(c)) == 0
    ]


def _in_script(number: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(d)) if d.isdigit() else d for d in number)


def _min_digits(items) -> int:
    """The fewest characters a parsed pattern's match must take from ``\\d``."""
    total = 0
    for op, av in items:
        if op is sre.LITERAL:
            total += chr(av).isdecimal()
        elif op is sre.IN:
            total += _set_is_digits(av)
        elif op is sre.SUBPATTERN:
            total += _min_digits(av[-1])
        elif op is sre.BRANCH:
            total += min(_min_digits(branch) for branch in av[1])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            total += av[0] * _min_digits(av[2])
        # AT, ASSERT, ASSERT_NOT and anything else take no characters for certain.
    return total


def _set_is_digits(members) -> bool:
    """True when a character set ``[...]`` matches only characters ``\\d`` matches."""
    ok = True
    for op, av in members:
        if op is sre.NEGATE:
            return False
        if op is sre.LITERAL:
            ok &= chr(av).isdecimal()
        elif op is sre.RANGE:
            ok &= all(chr(c).isdecimal() for c in range(av[0], av[1] + 1))
        elif op is sre.CATEGORY:
            ok &= av is sre.CATEGORY_DIGIT
        else:
            return False
    return ok


def test_every_pattern_has_its_fewest_digits_recorded():
    assert set(PATTERN_MIN_DIGITS) == set(PERSONAL_VALUE_PATTERNS)
    for name, pattern in PERSONAL_VALUE_PATTERNS.items():
        assert PATTERN_MIN_DIGITS[name] == _min_digits(sre.parse(pattern.pattern)), name
    # The counts are reached: these matches hold exactly that many digits.
    for name, text in {
        "mobile": "13812345678",
        "landline": "021-123-4567",
        "id15": "110101900307123",
        "id18": "11010119900307123X",
        "email": "a@b.c",
    }.items():
        assert PERSONAL_VALUE_PATTERNS[name].fullmatch(text), name
        assert sum(c.isdecimal() for c in text) == PATTERN_MIN_DIGITS[name], name


def test_python_digits_are_the_unicode_decimal_digits():
    # The digit bound counts what \d matches; the tests below build digits from Unicode's table.
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    found = re.findall(r"\d", every)
    assert found == [c for c in every if unicodedata.category(c) == "Nd"]
    assert len(_digit_zeros()) * 10 == len(found)


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_numbers_in_every_script_of_digits_are_caught(dtype):
    # "13" (ASCII: the pattern's 1[3-9]) and nine digits of each script: a mobile number to \d.
    for zero in _digit_zeros():
        number = "13" + _in_script("812345678", zero)
        column = _column(["B0001", None, number, "x" * 30], dtype)
        assert personal_by_content(column) is True, (dtype, hex(ord(zero)))
        one_short = _column(["B0001", number[:-1] + "x"], dtype)
        assert personal_by_content(one_short) is False, (dtype, hex(ord(zero)))
    ident = _in_script("110101199003071234", "\uff10")  # a full-width ID number
    assert personal_by_content(_column([ident], dtype)) == text_scan(_column([ident], dtype))


def _adversarial_values(rng: np.random.Generator, n: int) -> list:
    """Text made of pattern pieces and their near misses, in several scripts, cut at random."""
    pieces = [
        "13812345678",
        "1381234567",
        "+86 138-1234-5678",
        "(021) 1234 5678",
        "021-1234567",
        "021-123456",
        "110101199003071234",
        "11010119900307123X",
        "110101900307123",
        "11010190030712",
        "a@b.c",
        "a@b",
        "@",
        "x",
        "楼",
        "号",
        "\n",
        "\u3000",
        "１３８１２３４５６７８",
        "٠١٢٣٤٥٦٧٨٩",
        "-",
        ".",
        "",
    ]
    values: list = []
    for _ in range(n):
        v = "".join(rng.choice(pieces, size=int(rng.integers(1, 4))))
        values.append(v[: int(rng.integers(0, len(v) + 1))])
    for i in rng.choice(n, size=max(1, n // 5), replace=False):
        values[i] = [None, np.nan][int(rng.integers(0, 2))]
    return values


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_random_text_columns_of_every_dtype_match_both_scans(dtype):
    rng = np.random.default_rng(8)
    for _ in range(150):
        values = _adversarial_values(rng, int(rng.integers(1, 8)))
        column = _column(values, dtype)
        expected = _full_scan(column)
        assert text_scan(column) == expected, values  # the reference agrees with itself
        assert personal_by_content(column) == expected, (dtype, values)


def test_values_long_in_bytes_but_short_in_characters():
    # 10 characters, 26 bytes: long enough by bytes, one character short of a mobile number.
    ten = "13８１２３４５６７"
    for dtype in ("object", "str"):
        assert personal_by_content(_column([ten, ten + "x", "漢" * 40], dtype)) is False
        assert personal_by_content(_column([ten + "８"], dtype)) is True


@pytest.mark.parametrize(
    "values",
    [
        ["13812345678", 1],  # mixed types: the plain scan
        [13812345678, "x"],
        ["x", 13812345678.0],  # a float's text is "13812345678.0": still a mobile number
        ["x", 1.1010119900307123e17],  # written out as "1.1010119900307123e+17": no ID
        ["x", b"13812345678"],  # bytes: pandas writes them out decoded
        ["x", Decimal("13812345678")],
        ["x", pd.Timestamp("2024-01-01")],
        [None, np.nan, pd.NA],
        [np.str_("13812345678"), "x"],
        [],
    ],
)
def test_mixed_and_odd_object_columns_match_the_scan_before(values):
    column = pd.Series(values, dtype=object)
    assert personal_by_content(column) == text_scan(column), values


def test_text_with_a_lone_surrogate_takes_the_plain_scan():
    # Arrow (and pandas' "str") cannot hold a lone surrogate; the scan before raised on it.
    for values in (["\ud800", "13812345678"], ["\ud800x", "a@b.c"], ["\ud800", "x"], ["\udc80"]):
        for dtype in ("object", "string[python]"):
            column = pd.Series(values, dtype=dtype)
            assert personal_by_content(column) == _full_scan(column), (dtype, values)
        mixed = pd.Series([*values, 7], dtype=object)
        assert personal_by_content(mixed) == _full_scan(mixed), values


@pytest.mark.parametrize("dtype", ["int64", "Int64", "uint64", "float64", "Float64"])
def test_number_columns_with_long_numbers_match_the_scan_before(dtype):
    rng = np.random.default_rng(5)
    unsigned = dtype == "uint64"
    for _ in range(200):
        digits = rng.integers(1, 19, size=6)
        numbers = [int(rng.integers(10 ** (d - 1), 10**d)) for d in digits]
        numbers += [13812345678, 8613812345678, 110101199003071234, 110101900307123]
        picked = list(rng.choice(numbers, size=int(rng.integers(1, 5))))
        picked = [int(x) if unsigned else int(x) * int(rng.choice([1, -1])) for x in picked]
        if dtype in ("float64", "Float64"):
            picked = [float(x) for x in picked] + [np.nan, 0.5]
        elif dtype == "Int64":
            picked = [*picked, None]
        column = pd.Series(picked, dtype=dtype)
        assert personal_by_content(column) == text_scan(column), picked


HIDDEN = {
    "mobile": "值班 138 1234 5678",
    "landline": "(021) 5888 1234",
    "id18": "11010119900307123X",
    "email": "duty@example.cn",
    "full-width": "13８ １２３４ ５６７８",  # \d matches full-width digits
}


def _many(n: int) -> dict[str, np.ndarray]:
    """Short ids (B0000001) and long codes with 10 digits each (310115-0000000001): no match."""
    numbers = np.arange(n).astype(str)
    return {
        "ids": np.char.add("B", np.char.zfill(numbers, 7)).astype(object),
        "codes": np.char.add("310115-0", np.char.zfill(numbers, 9)).astype(object),
    }


@pytest.mark.parametrize("dtype", ["object", "str"])
def test_many_ids_and_codes_hold_nothing(dtype):
    for values in _many(50_000).values():
        column = _column(values, dtype)
        assert personal_by_content(column) is text_scan(column) is False


@pytest.mark.parametrize("dtype", ["object", "str"])
@pytest.mark.parametrize("kind", sorted(HIDDEN))
def test_one_personal_value_hidden_among_many_ids(dtype, kind):
    n = 200_000
    for name, values in _many(n).items():
        for at in (0, n // 2, n - 1):
            hidden = values.copy()
            hidden[at] = HIDDEN[kind]
            assert personal_by_content(_column(hidden, dtype)) is True, (name, kind, at)


def test_digit_blocks_and_arrow_chunks(monkeypatch):
    # Blocks of 3 values and a column in several Arrow chunks: every position of the one match.
    monkeypatch.setattr(privacy, "_DIGIT_BLOCK", 3)
    filler = ["310115-0000000001", "", None, "x" * 12, "0000000000 楼"]
    for at in range(len(filler) * 2 + 1):
        values = (filler * 2)[:at] + ["sfz 110101900307123"] + (filler * 2)[at:]
        parts = [pd.Series(values[:at], dtype="str"), pd.Series(values[at:], dtype="str")]
        chunked = pd.concat(parts, ignore_index=True)
        sliced = pd.Series(["pad"] + values, dtype="str").iloc[1:]
        for column in (chunked, sliced, pd.Series(values, dtype=object)):
            assert personal_by_content(column) is True, (at, column.dtype)
        clean = pd.concat([pd.Series(filler * 3, dtype="str")] * 2, ignore_index=True)
        assert personal_by_content(clean) is False
