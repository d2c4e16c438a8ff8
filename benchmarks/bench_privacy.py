"""Benchmark of the personal-data scan of a city's layer: ``personal_columns`` before and after.

Run on demand: ``python benchmarks/bench_privacy.py [--rows 5000000] [--dtype str object]
[--case ids phone address]``.

Every layer written to ``results.gpkg`` goes through :func:`firegrid.maps.privacy.personal_columns`
(``firegrid.reports.without_personal``), which scans each column's values for phone numbers,
ID numbers and e-mail addresses. This builds a buildings-like frame of ``--rows`` rows (the
columns of the access step: ``building_id`` like ``B0001234``, ``fire_station_id`` and
``micro_station_id`` of 1,000 stations, ``access_issue`` mostly empty, travel times with gaps,
counts, flags) and times ``personal_columns`` on it against the scan as it was before the
Arrow scan (commit 47fd64b, kept in tests/_privacy_reference.py as the reference: every distinct value written out as
text and searched). Both must name the same columns; the script stops if they do not.

Cases: ``ids`` (nothing personal); ``phone`` adds ``duty`` (the mobile numbers of 1,000 grid
workers, spaced ``138 1234 5678``, under a header that does not say so) and ``remark`` (empty but
for one phone number in the last row); ``address`` adds a Chinese street address per building
(up to four digits: none is a phone number). ``--dtype str`` is the text as read from a
GeoPackage with Arrow (pandas' ``str``); ``object`` is text held as Python objects.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from firegrid.maps.privacy import personal_by_name, personal_columns

STATIONS = 1000
ISSUES = ("no street within 500 m", "island: no route to a station")


def _before_personal_columns(df: pd.DataFrame) -> list[str]:
    # The frozen scan of 47fd64b lives with the tests, which check against it too.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests._privacy_reference import by_content

    return [c for c in df.columns if personal_by_name(c) or by_content(df[c])]


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width)).astype(object)


def buildings(rows: int, case: str, *, seed: int = 0) -> pd.DataFrame:
    """A buildings-like frame of ``rows`` rows (text as Python objects) for one case."""
    rng = np.random.default_rng(seed)
    t_fire = rng.gamma(4.0, 60.0, rows)
    t_fire[rng.random(rows) < 0.01] = np.nan
    issue = np.full(rows, "", dtype=object)
    flagged = rng.random(rows) < 0.01
    issue[flagged] = rng.choice(np.array(ISSUES, dtype=object), int(flagged.sum()))
    df = pd.DataFrame(
        {
            "building_id": _ids("B", np.arange(rows), 7),
            "t_fire_s": t_fire,
            "t_micro_s": rng.gamma(2.0, 60.0, rows),
            "fire_station_id": _ids("F", rng.integers(0, STATIONS, rows), 4),
            "micro_station_id": _ids("M", rng.integers(0, STATIONS, rows), 4),
            "n_fire_5min": rng.integers(0, 6, rows),
            "covered_3min": rng.random(rows) < 0.3,
            "access_m": rng.random(rows) * 80.0,
            "access_issue": issue,
        }
    )
    if case == "phone":
        phones = np.array(
            [
                f"13{rng.integers(5, 10)} {rng.integers(1000, 10000)} {rng.integers(1000, 10000)}"
                for _ in range(STATIONS)
            ],
            dtype=object,
        )
        df["duty"] = phones[rng.integers(0, STATIONS, rows)]
        remark = np.full(rows, "", dtype=object)
        remark[-1] = "ask 139-0000-1234 for the key"
        df["remark"] = remark
    elif case == "address":
        streets = np.array(["陆家嘴环路", "世纪大道", "浦东南路", "东方路", "张杨路"], dtype=object)
        df["address"] = (
            "上海市浦东新区"
            + streets[rng.integers(0, len(streets), rows)]
            + rng.integers(1, 3000, rows).astype(str).astype(object)
            + "号"
        )
    return df


def _as_dtype(df: pd.DataFrame, dtype: str) -> pd.DataFrame:
    text = [c for c in df.columns if df[c].dtype == object]
    return df.astype({c: dtype for c in text}) if dtype != "object" else df


def _timed(fn, df: pd.DataFrame) -> tuple[float, list[str]]:
    start = time.perf_counter()
    out = fn(df)
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--dtype", nargs="+", default=["str", "object"], choices=["str", "object"])
    parser.add_argument(
        "--case",
        nargs="+",
        default=["ids", "phone", "address"],
        choices=["ids", "phone", "address"],
    )
    args = parser.parse_args(argv)
    print(f"{args.rows:,} rows; times in seconds (after: best of 3)")
    print(f"{'case':8} {'dtype':7} {'before':>8} {'after':>8} {'ratio':>7}  personal")
    for case in args.case:
        built = buildings(args.rows, case)
        for dtype in args.dtype:
            df = _as_dtype(built, dtype)
            before, expected = _timed(_before_personal_columns, df)
            runs = [_timed(personal_columns, df) for _ in range(3)]
            after = min(t for t, _ in runs)
            if any(out != expected for _, out in runs):
                raise SystemExit(f"different columns: {runs[0][1]} (now) vs {expected} (before)")
            print(
                f"{case:8} {dtype:7} {before:8.2f} {after:8.3f} {before / after:6.1f}×  {expected}"
            )


if __name__ == "__main__":
    main()
