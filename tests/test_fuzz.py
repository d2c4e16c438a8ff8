"""Property-based fuzzing of the command line: whatever a config or ledger holds, a run ends in
exit 0, or in exit 2 with one ``firegrid: error:`` line — never a traceback.

Copies of the demo district are mutated (config values of every type at every key, unknown and
missing keys, odd strings; ledger cells, fields, quotes, encodings and bytes) and run in-process
through :func:`firegrid.cli.main`. The road network is left out (reading it takes seconds and
has its own tests), so ``access`` is a cheap command that still writes every output.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import math
import re
import shutil
import tomllib
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from firegrid.cli import main
from firegrid.config import PARAM_SECTIONS
from tests._demo import DEMO, DEMO_CONFIG, requires_demo

pytestmark = [requires_demo(), pytest.mark.slow]

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
_counter = itertools.count()

# ---------------------------------------------------------------------------------------------
# A minimal TOML writer: every table inline, every key and string quoted and escaped.


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    items = (f"{_toml_string(str(k))} = {_toml_value(v)}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def toml_dumps(data: dict) -> str:
    return "".join(f"{_toml_string(k)} = {_toml_value(v)}\n" for k, v in data.items())


def test_toml_writer_round_trips():
    data = {"a": {"b": [1, -0.0, 1e308, 'é\x00\U0001d518"\\'], "c": date(2026, 6, 30)}}
    assert tomllib.loads(toml_dumps(data)) == data


# ---------------------------------------------------------------------------------------------
# Every key a config may hold: the demo's own, and every field of every parameter section.


def _param_keys(cls, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    keys = []
    for f in fields(cls):
        keys.append((*prefix, f.name))
        default = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(default):
            keys += _param_keys(type(default), (*prefix, f.name))
    return keys


def _leaf_paths(table: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, value in table.items():
        paths.append((*prefix, key))
        if isinstance(value, dict):
            paths += _leaf_paths(value, (*prefix, key))
    return paths


BASE = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8")) if DEMO_CONFIG.exists() else {}
BASE.pop("network", None)  # see the module docstring
KEYS = sorted(
    set(_leaf_paths(BASE))
    | {k for name, cls in PARAM_SECTIONS.items() for k in _param_keys(cls, (name,))}
    | {("network", "source"), ("network", "place"), ("district", "crs")}
)

ODD_TEXT = [
    "", " ", "x" * 5000, "\x00", "\u202e", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "é", "..", "/", "~nobody/x",
    "EPSG:4326", "EPSG:32651", "GCJ-02", "WGS84", "2026-02-30", "2026-06-30",
    "hydrants.csv", "grids.gpkg", "all", "none", "risk_index", "ebike", "en",
]  # fmt: skip
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, -0.0, 0.5, float("inf"), float("-inf"), float("nan")]),
    st.text(max_size=12),
    st.sampled_from(ODD_TEXT),
    st.dates(),
    st.datetimes(),
)
toml_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=5,
)


@st.composite
def mutated_configs(draw) -> str:
    data = tomllib.loads(toml_dumps(BASE))  # a deep copy
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(KEYS))
        parent = data
        for key in path[:-1]:
            if not isinstance(parent, dict):
                break
            parent = parent.setdefault(key, {})
        if not isinstance(parent, dict):
            continue
        key = path[-1]
        how = draw(st.sampled_from(["value", "value", "value", "delete", "unknown", "typo"]))
        if how == "value":
            parent[key] = draw(toml_values)
        elif how == "delete":
            parent.pop(key, None)
        elif how == "unknown":
            parent[draw(st.text(min_size=1, max_size=10))] = draw(toml_values)
        elif key in parent:  # a typo in the key's name
            parent[key[:-1] or "_"] = parent.pop(key)
    text = toml_dumps(data)
    if draw(st.integers(0, 9)) == 0:  # a damaged file
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "[", '"', "\x00", "é", "=\n"]))
    return text


# ---------------------------------------------------------------------------------------------
# Ledgers: cells, fields, quotes, encodings and bytes.

LEDGERS = {  # file name → the encoding the demo writes it in
    "hydrants.csv": "gb18030",
    "stations.csv": "utf-8-sig",
    "hazards.csv": "utf-8-sig",
}
ODD_CELLS = [
    "inf", "-inf", "nan", "NaN", "Infinity", "1e308", "-1e308", "-0", "0", "-1", "1e-320",
    "", " ", '"', '""', 'a"b', ",", "\n", "\r", "2026-02-30", "2026/06/30", "30.06.2026",
    "20260630", "9999-12-31", "0001-01-01", "1900-01-01", "x" * 10000, "完好", "损坏",
    "消防车", "微型消防站", "重大", "\u202e", "=1+1", "None", "NULL", "true", "121.45", "31.2",
]  # fmt: skip
cells = st.one_of(
    st.sampled_from(ODD_CELLS),
    st.text(max_size=15),
    st.floats().map(repr),
    st.integers().map(str),
)


@st.composite
def mutated_ledgers(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(LEDGERS)))
    raw = (DEMO / name).read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode(LEDGERS[name]))))
    for _ in range(draw(st.integers(1, 4))):
        r = draw(st.integers(0, len(rows) - 1))
        c = draw(st.integers(0, 20)) % max(len(rows[r]), 1)
        how = draw(
            st.sampled_from(["cell", "cell", "cell", "extra", "drop", "header", "row", "dup"])
        )
        if how == "cell" and rows[r]:
            rows[r][c] = draw(cells)
        elif how == "extra":
            rows[r].append(draw(cells))
        elif how == "drop" and rows[r]:
            rows[r].pop()
        elif how == "header" and rows[0]:  # one header given twice, or renamed
            rows[0][c] = draw(st.sampled_from([*rows[0], *ODD_CELLS[:12]]))
        elif how == "row" and len(rows) > 1:
            rows.pop(r)
        elif how == "dup":
            rows.insert(r, list(rows[r]))
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):  # a stray quote or separator typed into the text
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', ",", "\n", "\x00", ""])) + text[at:]
    encoding = draw(st.sampled_from([LEDGERS[name], "gbk", "utf-16", "latin-1", "utf-8"]))
    data = text.encode(encoding, errors="replace")
    how = draw(st.sampled_from(["keep", "keep", "truncate", "flip", "empty"]))
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif how == "empty":
        data = b""
    return name, data


# ---------------------------------------------------------------------------------------------
# Running the command line in-process


@pytest.fixture(scope="module")
def district(tmp_path_factory) -> Path:
    """One copy of the demo district; every example writes its own config and ledger beside it."""
    folder = tmp_path_factory.mktemp("fuzz") / "demo"
    shutil.copytree(DEMO, folder)
    return folder


VALIDATE_SUMMARY = re.compile(r"^\d+ error\(s\)")  # "N error(s)", then the warnings count


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))  # anything but a FireGridError escapes and fails the test
    return code, out.getvalue(), err.getvalue()


def assert_clean_end(code: int, out: str, err: str) -> None:
    """Exit 0, or exit 2 with exactly one error line; warnings only as prefixed lines."""
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    event(f"exit {code}")  # pytest --hypothesis-show-statistics shows the mix
    lines = [line for line in err.splitlines() if not line.startswith("firegrid: warning: ")]
    if code == 0:
        assert lines == [], err
        return
    assert len(lines) == 1, err
    # validate lists every problem on stdout and ends with a count on stderr.
    ok = lines[0].startswith("firegrid: error: ") or (
        VALIDATE_SUMMARY.match(lines[0]) and "ERROR: " in out
    )
    assert ok, err


def _config_with(district: Path, text: str) -> Path:
    path = district / f"fuzz-{next(_counter)}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _ledger_config(district: Path, name: str, data: bytes) -> Path:
    n = next(_counter)
    (district / f"fuzz-{n}-{name}").write_bytes(data)
    config = dict(BASE)
    config["layers"] = {**BASE["layers"]}
    config["layers"][name.removesuffix(".csv")] = {
        **BASE["layers"][name.removesuffix(".csv")],
        "file": f"fuzz-{n}-{name}",
    }
    return _config_with(district, toml_dumps(config))


@settings(FUZZ, max_examples=40)
@given(text=mutated_configs())
def test_fuzzed_config_validates_or_fails_in_one_line(district, text):
    assert_clean_end(*run_cli("validate", str(_config_with(district, text))))


@settings(FUZZ, max_examples=20)
@given(ledger=mutated_ledgers())
def test_fuzzed_ledger_validates_or_fails_in_one_line(district, ledger):
    assert_clean_end(*run_cli("validate", str(_ledger_config(district, *ledger))))


@settings(FUZZ, max_examples=3)
@given(ledger=mutated_ledgers(), text=mutated_configs())
def test_fuzzed_run_writes_or_fails_in_one_line(district, ledger, text):
    out = district / f"out-{next(_counter)}"
    for config in (_ledger_config(district, *ledger), _config_with(district, text)):
        assert_clean_end(*run_cli("access", str(config), "-q", "--out", str(out)))
