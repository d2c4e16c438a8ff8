"""The hazard ledger: status, escalation by days overdue, and its effect on the risk index."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point

from firegrid.risk import score_district
from firegrid.risk.hazards import escalation_summary, hazard_ledger, hazards_by_building
from firegrid.risk.params import HazardParams
from firegrid.spatial.errors import ConfigError, InputError
from tests import risk_synthetic as rs

AS_OF = pd.Timestamp("2025-06-30")


def _ledger_rows(rows, crs=rs.CRS, geometry=None) -> gpd.GeoDataFrame:
    cols = ["hazard_id", "building_id", "category", "found_on", "deadline", "rectified_on"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("found_on", "deadline", "rectified_on"):
        df[c] = pd.to_datetime(df[c])
    geoms = geometry or [Point(rs.X0, rs.Y0)] * len(df)
    return gpd.GeoDataFrame(df, geometry=geoms, crs=crs)


def _d(days: int) -> str:
    """The date ``days`` after AS_OF (negative: before)."""
    return (AS_OF + pd.Timedelta(days=days)).date().isoformat()


def test_status_escalation_and_weight_follow_the_documented_rule():
    rows = [
        # id, building, category, found_on, deadline, rectified_on → status, level, weight
        ("g_open", "B1", "general", _d(-5), _d(10), None),  # open, inspector
        ("g_due_today", "B1", "general", _d(-15), _d(0), None),  # deadline day: still open
        ("g_late3", "B1", "general", _d(-30), _d(-3), None),  # 1–7 days → grid head
        ("g_late10", "B1", "general", _d(-30), _d(-10), None),  # 8–30 → subdistrict
        ("g_late40", "B1", "general", _d(-90), _d(-40), None),  # > 30 → district
        ("m_open", "B2", "major", _d(-5), _d(50), None),  # major starts at grid head
        ("m_late3", "B2", "major", _d(-70), _d(-3), None),  # → subdistrict
        ("m_late10", "B2", "major", _d(-70), _d(-10), None),  # → district
        ("fixed", "B2", "major", _d(-70), _d(-10), _d(-1)),  # rectified: stops counting
        ("fixed_later", "B2", "general", _d(-30), _d(-3), _d(5)),  # fixed after as_of: overdue
        ("future", "B2", "general", _d(3), _d(20), None),  # found after as_of
    ]
    led = hazard_ledger(_ledger_rows(rows), as_of=AS_OF).set_index("hazard_id")
    expect = {
        "g_open": ("open", 1, "inspector", "网格员", 1.0),
        "g_due_today": ("open", 1, "inspector", "网格员", 1.0),
        "g_late3": ("overdue", 2, "grid_head", "网格长", 1.5),
        "g_late10": ("overdue", 3, "subdistrict", "街道", 2.0),
        "g_late40": ("overdue", 4, "district", "区", 2.5),
        "m_open": ("open", 2, "grid_head", "网格长", 3.0),
        "m_late3": ("overdue", 3, "subdistrict", "街道", 4.5),
        "m_late10": ("overdue", 4, "district", "区", 6.0),
        "fixed": ("rectified", 0, "", "", 0.0),
        "fixed_later": ("overdue", 2, "grid_head", "网格长", 1.5),
        "future": ("future", 0, "", "", 0.0),
    }
    for hid, (status, level, role, label, weight) in expect.items():
        row = led.loc[hid]
        assert (row["status"], row["escalation_level"]) == (status, level), hid
        assert (row["escalation_to"], row["escalation_label"]) == (role, label), hid
        assert row["hazard_weight"] == pytest.approx(weight), hid
    assert led.loc["g_late40", "days_overdue"] == 40 and led.loc["g_open", "days_overdue"] == 0
    assert led.loc["fixed", "rectified_late"]
    per = hazards_by_building(led.reset_index())
    assert per.loc["B1", "hazards_open"] == 5 and per.loc["B1", "hazards_overdue"] == 3
    assert per.loc["B2", "hazards_open"] == 4 and per.loc["B2", "hazards_major_open"] == 3
    assert per.loc["B1", "hazard_load"] == pytest.approx(1 + 1 + 1.5 + 2 + 2.5)
    summary = escalation_summary(led.reset_index()).set_index("escalation_level")
    assert summary["total"].tolist() == [2, 3, 2, 2]
    assert summary.loc[4, "major"] == 1 and summary.loc[4, "escalation_label"] == "区"


def test_escalation_rule_is_configurable():
    rows = [("h", "B1", "general", _d(-30), _d(-3), None)]
    p = HazardParams.from_mapping({"general_escalate_days": [0, 2], "overdue_step": 1.0})
    row = hazard_ledger(_ledger_rows(rows), as_of=AS_OF, params=p).iloc[0]
    assert row["escalation_level"] == 3 and row["hazard_weight"] == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="increasing"):
        HazardParams(general_escalate_days=(7, 3))
    with pytest.raises(ConfigError, match="unknown key 'grace'"):
        HazardParams.from_mapping({"grace": 3})


def test_missing_deadline_is_imputed_by_category_and_flagged():
    rows = [
        ("g", "B1", "general", _d(-20), None, None),
        ("m", "B1", "major", _d(-20), None, None),
    ]
    led = hazard_ledger(_ledger_rows(rows), as_of=AS_OF).set_index("hazard_id")
    assert led["imputed_deadline"].all()
    assert led.loc["g", "deadline_used"] == AS_OF - pd.Timedelta(days=5)  # found + 15 days
    assert led.loc["g", "status"] == "overdue" and led.loc["m", "status"] == "open"


def test_chinese_categories_and_bad_rows():
    rows = [("a", "B1", "重大", _d(-5), _d(5), None), ("b", "B1", "一般", _d(-5), _d(5), None)]
    led = hazard_ledger(_ledger_rows(rows), as_of=AS_OF)
    assert led["category"].tolist() == ["major", "general"]
    with pytest.raises(
        InputError,
        match=r"hazard_id x\), column 'rectified_on'.*before the day the hazard was found",
    ):
        hazard_ledger(_ledger_rows([("x", "B1", "general", _d(-5), _d(5), _d(-9))]), as_of=AS_OF)
    with pytest.raises(InputError, match="category"):
        hazard_ledger(_ledger_rows([("x", "B1", "severe", _d(-5), _d(5), None)]), as_of=AS_OF)
    with pytest.raises(InputError, match="found_on"):
        hazard_ledger(_ledger_rows([("x", "B1", "general", None, _d(5), None)]), as_of=AS_OF)


def test_hazards_without_building_id_attach_to_the_nearest_building_within_snap():
    b = rs.buildings(30, seed=8)
    inside = b.geometry.iloc[4].centroid
    near = Point(b.geometry.iloc[7].bounds[2] + 4, b.geometry.iloc[7].centroid.y)  # 4 m east
    far = Point(rs.X0 - 500, rs.Y0 - 500)
    rows = [
        ("in", None, "general", _d(-5), _d(5), None),
        ("near", "NO-SUCH-ID", "general", _d(-5), _d(5), None),
        ("far", None, "general", _d(-5), _d(5), None),
        ("id", b["building_id"].iloc[2], "general", _d(-5), _d(5), None),
    ]
    led = hazard_ledger(
        _ledger_rows(rows, geometry=[inside, near, far, far]), b, as_of=AS_OF
    ).set_index("hazard_id")
    assert led.loc["in", "building_id_matched"] == b["building_id"].iloc[4]
    assert led.loc["near", "building_id_matched"] == b["building_id"].iloc[7]
    assert led.loc[["in", "near"], "match"].tolist() == ["nearest", "nearest"]
    assert pd.isna(led.loc["far", "building_id_matched"]) and led.loc["far", "match"] == "none"
    assert led.loc["id", "match"] == "id"  # the id wins over the (far) point
    with pytest.raises(InputError, match="degrees"):
        hazard_ledger(_ledger_rows(rows, geometry=[inside] * 4).to_crs(4326), b, as_of=AS_OF)


def _scores(b, hazards, as_of=AS_OF) -> pd.DataFrame:
    return score_district(b, hazards=hazards, as_of=as_of).buildings.set_index("building_id")


def test_rectifying_a_hazard_lowers_the_score_and_letting_it_go_overdue_raises_it():
    b = rs.buildings(60, seed=12)
    target = b["building_id"].iloc[10]
    other = [("o", b["building_id"].iloc[20], "general", _d(-50), _d(-30), None)]

    def ledger(deadline, rectified=None, category="general"):
        rows = [("h", target, category, _d(-60), deadline, rectified)] + other
        return _ledger_rows(rows)

    open_ = _scores(b, ledger(_d(20)))
    fixed = _scores(b, ledger(_d(20), rectified=_d(-1)))
    assert fixed.loc[target, "risk_index"] < open_.loc[target, "risk_index"]
    assert fixed.loc[target, "hazards_open"] == 0 and open_.loc[target, "hazards_open"] == 1
    # Rectifying one hazard moves only its building.
    unchanged = fixed.index != target
    np.testing.assert_allclose(
        fixed.loc[unchanged, "risk_index"], open_.loc[unchanged, "risk_index"]
    )
    # Overdue counts more, and more with every escalation step.
    series = [open_.loc[target, "risk_index"]]
    for days in (3, 10, 40):
        s = _scores(b, ledger(_d(-days)))
        assert s.loc[target, "hazards_overdue"] == 1
        series.append(s.loc[target, "risk_index"])
    assert all(later > earlier for earlier, later in zip(series, series[1:], strict=False))
    # Major counts more than general; no ledger is "not assessed", not zero.
    major = _scores(b, ledger(_d(20), category="major"))
    assert major.loc[target, "risk_index"] > open_.loc[target, "risk_index"]
    none = score_district(b, as_of=AS_OF)
    assert "hazards" in none.report.not_assessed and none.buildings["c_hazards"].isna().all()


def test_same_ledger_read_later_sees_rectification():
    b = rs.buildings(40, seed=13)
    target = b["building_id"].iloc[3]
    rows = [("h", target, "general", "2025-01-10", "2025-02-10", "2025-05-01")]
    march = _scores(b, _ledger_rows(rows), as_of="2025-03-01")
    june = _scores(b, _ledger_rows(rows), as_of="2025-06-30")
    assert march.loc[target, "hazards_overdue"] == 1 and june.loc[target, "hazards_open"] == 0
    assert june.loc[target, "risk_index"] < march.loc[target, "risk_index"]


# --- Escalation at every boundary (documented defaults, HazardParams) ----------------------------
# General: start at level 1 (网格员); thresholds (0, 7, 30) days overdue, each one *exceeded*
# raises a level: 0 days → 1, 1–7 → 2, 8–30 → 3, > 30 → 4. Weight 1 × (1 + 0.5 × steps).
# Major: start at level 2 (网格长); thresholds (0, 7): 0 → 2, 1–7 → 3, > 7 → 4 (cap).
# Weight 3 × (1 + 0.5 × steps).
@pytest.mark.parametrize(
    ("category", "days_over", "status", "level", "weight"),
    [
        ("general", 0, "open", 1, 1.0),  # deadline day itself: not yet overdue
        ("general", 1, "overdue", 2, 1.5),  # 1 × (1 + 0.5 × 1)
        ("general", 7, "overdue", 2, 1.5),
        ("general", 8, "overdue", 3, 2.0),  # 1 × (1 + 0.5 × 2)
        ("general", 30, "overdue", 3, 2.0),
        ("general", 31, "overdue", 4, 2.5),  # 1 × (1 + 0.5 × 3)
        ("major", 0, "open", 2, 3.0),
        ("major", 1, "overdue", 3, 4.5),  # 3 × (1 + 0.5 × 1)
        ("major", 7, "overdue", 3, 4.5),
        ("major", 8, "overdue", 4, 6.0),  # 3 × (1 + 0.5 × 2)
        ("major", 30, "overdue", 4, 6.0),
        ("major", 31, "overdue", 4, 6.0),  # no third threshold: stays at 4, weight 6
    ],
)
def test_escalation_at_every_boundary(category, days_over, status, level, weight):
    rows = [("h", "B1", category, _d(-days_over - 20), _d(-days_over), None)]
    led = hazard_ledger(_ledger_rows(rows), as_of=AS_OF).iloc[0]
    roles = {1: ("inspector", "网格员"), 2: ("grid_head", "网格长"), 3: ("subdistrict", "街道")}
    roles[4] = ("district", "区")
    assert led["status"] == status
    assert led["days_overdue"] == days_over
    assert led["escalation_level"] == level
    assert (led["escalation_to"], led["escalation_label"]) == roles[level]
    assert led["hazard_weight"] == pytest.approx(weight)


@pytest.mark.parametrize(
    ("category", "found_days_ago", "status", "days_over"),
    [
        ("general", 15, "open", 0),  # default deadline found_on + 15 days = as_of
        ("general", 16, "overdue", 1),
        ("major", 60, "open", 0),  # found_on + 60 days
        ("major", 61, "overdue", 1),
    ],
)
def test_default_deadline_periods_at_the_boundary(category, found_days_ago, status, days_over):
    rows = [("h", "B1", category, _d(-found_days_ago), None, None)]
    led = hazard_ledger(_ledger_rows(rows), as_of=AS_OF).iloc[0]
    assert bool(led["imputed_deadline"])
    period = 15 if category == "general" else 60
    assert led["deadline_used"] == AS_OF - pd.Timedelta(days=found_days_ago - period)
    assert (led["status"], led["days_overdue"]) == (status, days_over)


def test_rectification_on_the_ledger_day_and_found_on_the_ledger_day():
    rows = [
        ("fixed_today", "B1", "general", _d(-40), _d(-35), _d(0)),  # rectified on as_of
        ("found_today", "B1", "general", _d(0), _d(15), None),  # found on as_of: open
        ("found_tomorrow", "B1", "general", _d(1), _d(15), None),  # future
        ("fixed_tomorrow", "B1", "general", _d(-40), _d(-35), _d(1)),  # still overdue today
    ]
    led = hazard_ledger(_ledger_rows(rows), as_of=AS_OF).set_index("hazard_id")
    assert led["status"].tolist() == ["rectified", "open", "future", "overdue"]
    # fixed_tomorrow is 35 days overdue today: > 0, > 7, > 30 → 1 + 3 = level 4, weight 2.5.
    assert led["escalation_level"].tolist() == [0, 1, 0, 4]
    assert led["hazard_weight"].tolist() == [0.0, 1.0, 0.0, 2.5]


# --------------------------------------------------------------------------------------------
# Messages: a ledger error names the user's file, the row as seen in it and the user's header


def test_validated_ledger_error_names_file_spreadsheet_row_and_user_header():
    from firegrid.config import district_from_config, load_config
    from tests._demo import DEMO_CONFIG

    district, report = district_from_config(load_config(DEMO_CONFIG))
    assert report.ok
    hz = district.hazards.copy()
    hz.loc[4, "deadline"] = pd.Timestamp("2020-01-01")
    # A subset keeps its rows' labels, so the row in the file is still found.
    with pytest.raises(InputError) as caught:
        hazard_ledger(hz.iloc[2:], district.buildings, as_of=AS_OF)
    msg = str(caught.value)
    assert msg.startswith(str(DEMO_CONFIG.parent / "hazards.csv"))
    assert "row 6 (hazard_id YH20240005)" in msg  # data row 5 below the header row
    assert "column '整改期限' (deadline)" in msg
    assert "2020-01-01 is before the day the hazard was found (2024-02-05)" in msg


def test_notebook_ledger_date_error_names_the_index_label_and_refuses_two_digit_years():
    rows = [
        ("a", "B1", "general", _d(-5), _d(5), None),
        ("b", "B1", "general", _d(-5), _d(5), None),
    ]
    ledger = _ledger_rows(rows)
    ledger["deadline"] = ["2025-07-05", "25.7.5"]
    ledger.index = [10, 11]
    with pytest.raises(InputError) as caught:
        hazard_ledger(ledger, as_of=AS_OF)
    msg = str(caught.value)
    assert "hazards layer: index 11 (hazard_id b), column 'deadline'" in msg
    assert "two-digit year is ambiguous" in msg and "'25.7.5'" in msg and "YYYY-MM-DD" in msg


def test_as_of_with_a_two_digit_year_is_refused():
    with pytest.raises(ConfigError, match="two-digit year"):
        hazard_ledger(_ledger_rows([("a", "B1", "general", _d(-5), _d(5), None)]), as_of="25.6.30")


def test_ledger_without_buildings_trusts_the_given_ids_and_records_its_date():
    rows = [
        ("h1", "B7", "general", _d(-5), _d(10), None),
        ("h2", None, "general", _d(-5), _d(10), None),
    ]
    led = hazard_ledger(_ledger_rows(rows), as_of=AS_OF)
    assert led["match"].tolist() == ["id", "none"]
    assert led["building_id_matched"].iloc[0] == "B7" and pd.isna(
        led["building_id_matched"].iloc[1]
    )
    assert led.attrs["as_of"] == "2025-06-30"


def test_a_date_that_is_not_a_date_names_its_hazard_and_column():
    df = _ledger_rows([("h1", "B1", "general", _d(-5), _d(10), None)])
    bad = pd.concat([df, df]).reset_index(drop=True)
    bad["hazard_id"] = ["h1", "h2"]
    bad["found_on"] = bad["found_on"].astype(object)
    bad.loc[1, "found_on"] = "last spring"
    with pytest.raises(InputError, match="last spring") as exc:
        hazard_ledger(bad, as_of=AS_OF)
    assert "h2" in str(exc.value) and "found_on" in str(exc.value)
