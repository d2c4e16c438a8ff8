"""The allow-list and display values of leaders' outputs, hand-checked (kills survived mutants)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from firegrid.maps.privacy import (
    html_columns,
    personal_by_content,
    personal_by_name,
    personal_columns,
    safe_properties,
    shared_columns,
)


@pytest.mark.parametrize(
    ("header", "personal"),
    [
        ("Home-Address", True),  # fragment after "-" became "_"
        ("Owner Name", True),
        ("TEL", True),  # whole-word token, any case
        ("tel.2", True),  # token split on non-letters
        ("dh", True),
        ("hotel", False),  # "tel" only as a whole word
        ("dhl_route", False),
        ("zone", False),
        ("备注", False),
    ],
)
def test_personal_by_name(header, personal):
    assert personal_by_name(header) is personal


def test_personal_by_content_kinds_of_column():
    assert personal_by_content(pd.Series(["quiet", "mail li@example.cn"]))
    assert personal_by_content(pd.Series([None, "13812345678"]))
    assert personal_by_content(pd.Series([13812345678.0, np.nan, np.inf]))
    assert not personal_by_content(pd.Series([13812345678.5, np.nan]))  # not a whole number
    assert not personal_by_content(pd.Series([True, False]))
    assert not personal_by_content(pd.Series(pd.to_datetime(["2024-01-01"])))
    assert not personal_by_content(pd.Series([], dtype=object))
    assert not personal_by_content(pd.Series([None, None], dtype=object))
    assert not personal_by_content(pd.Series(["quiet", "12345"]))
    # values are checked one by one: an unfinished address does not borrow the next value
    assert not personal_by_content(pd.Series(["li@example.", "cn"]))
    assert not personal_by_content(pd.Series(["138 1234", "5678"]))


def test_personal_columns_order_and_never_the_geometry():
    g = gpd.GeoDataFrame(
        {
            "zone": ["a"],
            "note": ["call 139-1234-5678"],
            "contact": ["x"],
            "owner": [shapely.Point(0, 0)],
        },
        geometry="owner",
    )
    assert personal_columns(g) == ["note", "contact"]
    plain = pd.DataFrame({"owner": ["x"], "zone": ["a"]})
    assert personal_columns(plain) == ["owner"]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "risk_index": [40.0],
            "extra": ["east"],
            "owner": ["Li"],
            "note": ["13812345678"],
            "minutes": [3.0],
        }
    )


def test_shared_columns_allow_list():
    df = _frame()
    assert shared_columns(df) == ["risk_index", "minutes"]
    assert shared_columns(df, allow=["extra"]) == ["risk_index", "extra", "minutes"]
    # "all": every column that does not look personal, by header or by content
    assert shared_columns(df, allow=["all"]) == ["risk_index", "extra", "minutes"]
    # only naming a personal column lets it through
    assert shared_columns(df, allow=["all", "owner"]) == ["risk_index", "extra", "owner", "minutes"]
    assert shared_columns(df, allow=["note"]) == ["risk_index", "note", "minutes"]
    assert shared_columns(df, computed=["extra"]) == ["risk_index", "extra", "minutes"]
    # computed is not a pass for a personal value
    assert shared_columns(df, computed=["note"]) == ["risk_index", "minutes"]
    assert shared_columns(df, wanted=["minutes", "nope", "risk_index"]) == ["minutes", "risk_index"]
    # a canonical column holding a phone number is caught by content
    bad = pd.DataFrame({"name": ["13912345678"], "grid_id": ["G1"]})
    assert shared_columns(bad) == ["grid_id"]
    assert shared_columns(bad, allow=["name"]) == ["name", "grid_id"]


def test_html_columns_is_the_same_allow_list_without_the_geometry():
    df = gpd.GeoDataFrame(_frame(), geometry=[shapely.Point(0, 0)])
    assert html_columns(df) == ["risk_index", "minutes"]
    assert html_columns(df, allow=["all"]) == ["risk_index", "extra", "minutes"]
    assert html_columns(df, allow=["owner"], wanted=["owner", "minutes"]) == ["owner", "minutes"]
    assert "geometry" not in html_columns(df, allow=["all", "geometry"])


def test_safe_properties_numbers():
    df = pd.DataFrame(
        {
            "t": [12.345, 2.0, np.inf, -np.inf, 2.0**53, 0.06],
            "p_fire": [0.12345, 1.0, 0.5, np.nan, 0.0004, 0.9996],
            "area_km2": [1.23456, 0.0, 2.5, 1.0, 0.1, 3.0],
            "n": np.array([1, 2, 3, 4, 5, 6], dtype=np.int64),
        }
    )
    rows = safe_properties(df, ["t", "p_fire", "area_km2", "n"])
    t = [r["t"] for r in rows]
    assert t[0] == 12.3 and t[1] == 2 and type(t[1]) is int
    assert t[2] is None and t[3] is None  # infinities are gaps
    assert t[4] == 2.0**53 and type(t[4]) is float  # too big to be exact as an int
    assert t[5] == 0.1
    p = [r["p_fire"] for r in rows]
    assert p[0] == 0.123 and p[1] == 1 and type(p[1]) is int and p[2] == 0.5
    assert p[3] is None and p[4] == 0 and p[5] == 1
    assert [r["area_km2"] for r in rows][:3] == [1.235, 0, 2.5]
    assert [r["n"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(type(r["n"]) is int for r in rows)


def test_safe_properties_text_dates_and_labels():
    df = pd.DataFrame(
        {
            "status": ["ok", "broken", None],
            "note": ["ok", "<i>a</i>", "b"],
            "working": np.array([True, False, True]),
            "day": pd.to_datetime(["2024-03-05", None, "2025-12-31"]),
        }
    )
    labels = {"ok": "完好", "True": "是"}
    rows = safe_properties(df, ["status", "note", "working", "day"], value_labels=labels,
                           translate=["status"])  # fmt: skip
    assert [r["status"] for r in rows] == ["完好", "broken", None]
    assert [r["note"] for r in rows] == ["ok", "&lt;i&gt;a&lt;/i&gt;", "b"]  # not translated
    # booleans always take the labels; a value without one keeps its word
    assert [r["working"] for r in rows] == ["是", "False", "是"]
    assert [r["day"] for r in rows] == ["2024-03-05", None, "2025-12-31"]
    plain = safe_properties(df, ["working", "status"])
    assert [r["working"] for r in plain] == ["True", "False", "True"]
    assert [r["status"] for r in plain] == ["ok", "broken", None]
