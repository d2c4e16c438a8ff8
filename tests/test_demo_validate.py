"""The embedded demo reads cleanly through its config, the way a user's district would."""

import geopandas as gpd
import numpy as np

from firegrid.cli import main
from firegrid.config import district_from_config, load_config
from firegrid.spatial.io.readers import read_layer_file
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
