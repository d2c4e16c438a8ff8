"""Write the demo's after-siting stations: stations.csv plus the sites a demo run proposes.

The before/after-siting scenario of ``firegrid diff`` (docs/diff.md): ``after_siting.toml``
is ``demo.toml`` with ``stations_after_siting.csv``, which this script makes from the ``sites``
layer of a demo run's ``results.gpkg``. Run from the repository root::

    firegrid demo --out /tmp/demo-before
    python data/make_after_siting.py /tmp/demo-before/results.gpkg

New stations are micro-stations with the crews the siting assumed (``[access]
default_micro_vehicle``, e-bike, and its profile's 60 s turnout), at the sites' coordinates
shifted to GCJ-02 like the rest of the file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd

from firegrid.spatial.io.crs import wgs84_to_gcj02

DEMO = Path(__file__).resolve().parent / "demo"
STATIONS = DEMO / "stations.csv"
OUT = DEMO / "stations_after_siting.csv"
# The siting's assumptions for a new station's crew (firegrid.spatial.siting.stations).
VEHICLE, TURNOUT_S, STAFF = "电动车", 60, 4


def after_siting(results_gpkg: str | Path) -> pd.DataFrame:
    """The demo's stations table with one micro-station row per proposed site."""
    stations = pd.read_csv(STATIONS, dtype=str, encoding="utf-8")
    sites = gpd.read_file(results_gpkg, layer="sites").to_crs(4326)
    lon, lat = wgs84_to_gcj02(sites.geometry.x.to_numpy(), sites.geometry.y.to_numpy())
    header = list(stations.columns)
    new = pd.DataFrame(
        {
            header[0]: sites["site_id"].map(lambda s: f"XJ-{s}"),
            header[1]: sites["road_name"].map(lambda r: f"{r}新建微型消防站（选址建议）"),
            header[2]: "微型消防站",
            header[3]: VEHICLE,
            header[4]: str(TURNOUT_S),
            header[5]: str(STAFF),
            header[6]: [f"{v:.7f}" for v in lon],
            header[7]: [f"{v:.7f}" for v in lat],
        }
    )
    return pd.concat([stations, new], ignore_index=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python data/make_after_siting.py DEMO_RUN/results.gpkg")
    after_siting(sys.argv[1]).to_csv(OUT, index=False, encoding="utf-8", lineterminator="\n")
    print(f"wrote {OUT}")
