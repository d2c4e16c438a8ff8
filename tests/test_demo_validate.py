"""The embedded demo reads cleanly through its config, the way a user's district would."""

import tomllib

import geopandas as gpd
import numpy as np

from firegrid.cli import main
from firegrid.config import district_from_config, load_config, parse_config
from firegrid.risk.score import score_district
from firegrid.spatial.io.readers import read_layer_file
from tests._demo import DEMO_CONFIG, demo_pipeline_run, requires_demo
from tests.conftest import DEMO


def test_validate_demo_is_clean(capsys):
    assert main(["validate", str(DEMO / "demo.toml")]) == 0
    out = capsys.readouterr().out
    assert "OK:" in out and "ERROR" not in out and "WARNING" not in out


def test_demo_hydrants_from_gcj02_csv_match_wgs84_gpkg():
    district, report = district_from_config(load_config(DEMO / "demo.toml"))
    assert report.ok, report.lines()
    from_csv = district.hydrants.set_index("hydrant_id")
    truth = gpd.read_file(DEMO / "hydrants_wgs84.gpkg").to_crs(district.crs).set_index("hydrant_id")
    assert len(truth) == len(from_csv)
    d = from_csv.geometry.distance(truth.geometry.loc[from_csv.index])
    assert np.nanmax(d.to_numpy()) < 0.5
    assert from_csv["status"].isin(["ok", "broken", "missing"]).all()


def test_demo_hydrants_csv_really_is_gcj02():
    # Read without removing the offset, the same hydrants land hundreds of metres away.
    raw, _ = read_layer_file(DEMO / "hydrants.csv", columns={"编号": "hydrant_id"})
    raw = raw.set_crs("EPSG:4326").to_crs(32651).set_index("hydrant_id")
    truth = gpd.read_file(DEMO / "hydrants_wgs84.gpkg").to_crs(32651).set_index("hydrant_id")
    assert raw.geometry.distance(truth.geometry.loc[raw.index]).min() > 300


@requires_demo()
def test_demo_risk_figures_stay_at_the_baseline():
    # The figures of the demo before each setting was given one home (see the README).
    figures = demo_pipeline_run().figures["risk"]
    assert figures["grades"] == {1: 41, 2: 425, 3: 1102, 4: 992}
    assert round(figures["risk_index_mean"], 1) == 33.4
    assert round(figures["risk_index_max"], 1) == 76.4
    assert (figures["hazards_open"], figures["hazards_overdue"]) == (44, 19)


@requires_demo()
def test_demo_hydrant_radius_set_in_water_is_the_one_the_risk_index_uses():
    run = demo_pipeline_run()
    # Deficiency from the network distance alone, so the risk step applies the radius itself.
    b = run.layers["buildings"].drop(columns=["water_deficient", "water_covered"])
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    as_of = load_config(DEMO_CONFIG).as_of
    d = b["d_hydrant_net_m"].to_numpy()
    s_water = {}
    for radius in (150, 100):
        edited = text.replace("[water]\n", f"[water]\nhydrant_radius_m = {radius}\n", 1)
        params = parse_config(tomllib.loads(edited), path=DEMO_CONFIG).params["risk"]
        s_water[radius] = score_district(b, as_of=as_of, params=params).buildings["s_water"]
        assert (s_water[radius].to_numpy() == (d > radius)).all()
    assert (s_water[100] > s_water[150]).sum() == ((d > 100) & (d <= 150)).sum() > 0
