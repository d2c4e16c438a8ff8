"""Region runs: partitioned results equal a whole-region run, stations serve across borders.

The region is the demo district's own files split by its level-2 grid (eight communities as
partitions), with every vehicle slowed to 10 km/h and a 300 s horizon, so that each partition's
halo (833 m for points, 1.7 km for streets) is smaller than the district and the windows
really are clipped. The reference is the same region analysed in one piece by the district
pipeline's own steps (``run_region(whole=True)``: no windows, no clipped network).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from firegrid.region import load_region_config, region_halo, run_region
from firegrid.region.horizon import beyond_horizon
from firegrid.region.partitions import clip_network, iter_windows
from firegrid.spatial.errors import ConfigError

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
SLOW_KMH = 10.0


def demo_region_toml(folder: Path, *, incidents: bool = False) -> Path:
    """The demo district's config as a region split by level 2, every vehicle slowed."""
    text = (DEMO / "demo.toml").read_text(encoding="utf-8")
    text = text.replace("[district]", "[region]\npartition_level = 2\nhorizon_s = 300", 1)
    text = re.sub(r'(file|source) = "([^"]+)"', lambda m: f'{m[1]} = "{(DEMO / m[2]).as_posix()}"',
                  text)  # fmt: skip
    slow = "".join(f"{v} = {{ max_speed_kmh = {SLOW_KMH} }}\n" for v in ("engine", "ebike", "foot"))
    text = text.replace("[access]\n", "[access]\n" + slow, 1)
    if not incidents:  # the fire model is region-wide and tested elsewhere; it costs seconds
        text = re.sub(r"\[layers\.incidents\][^\[]*", "", text)
    path = folder / "region.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def region_path(tmp_path_factory) -> Path:
    return demo_region_toml(tmp_path_factory.mktemp("region"))


@pytest.fixture(scope="module")
def whole(region_path):
    return run_region(region_path, whole=True)


@pytest.fixture(scope="module")
def parts(region_path):
    return run_region(region_path, workers=0)


def test_halo_is_speed_times_horizon():
    config = load_region_config(demo_region_toml(Path(pytest.importorskip("tempfile").mkdtemp())))
    p = config.base.params
    halo = region_halo(p["access"], p["water"], horizon_s=300)
    assert halo.speed_mps == pytest.approx(SLOW_KMH / 3.6)
    # max(v × H, water reach + two snapping legs) = max(833 m, 300 + 2 × 150 m)
    assert halo.points_m == pytest.approx(max(SLOW_KMH / 3.6 * 300, 600.0))
    assert halo.network_m == pytest.approx(2 * halo.points_m)
    default = region_halo(p["access"], p["water"])
    assert default.horizon_s == 600  # twice the 300 s fire-station target
    with pytest.raises(ConfigError, match="shorter than the longest target"):
        region_halo(p["access"], p["water"], horizon_s=200)


def test_windows_are_clipped(whole, parts):
    total = whole.run.network.n_edges
    assert len(parts.partitions) == 8
    assert parts.partitions["error"].isna().all()
    assert (parts.partitions["edges"] < total).sum() >= 4, parts.partitions
    assert parts.partitions["buildings"].sum() == len(whole.buildings)


def test_water_step_reads_a_shorter_reach(whole):
    """The water step's streets are clipped to its own reach (the equality with the whole
    run, below, is what makes that clip exact)."""
    ctx, halo = whole.run, whole.halo
    assert halo.water_network_m < halo.network_m
    windows = list(iter_windows(ctx.district, ctx.network, level=2, halo=halo))
    reach = [(w.water_reach(), w) for w in windows]
    assert sum(water.n_edges < w.network.n_edges for (water, _), w in reach) >= 4
    assert all(set(water.node_ids) <= set(w.network.node_ids) for (water, _), w in reach)
    # hydrants: fewer than the travel-time halo holds, every one the cell owns among them
    assert sum(len(near["hydrants"]) < len(w.layers["hydrants"]) for (_, near), w in reach) >= 4
    assert all(w.owned["hydrants"].isin(near["hydrants"].index).all() for (_, near), w in reach)


def test_partitioned_buildings_equal_whole(whole, parts):
    w, p = whole.buildings, parts.buildings
    assert w.index.equals(p.index)
    # Something to compare: times within the horizon, and beyond it.
    assert 100 < p["t_micro_s"].notna().sum() < len(p)
    assert p["t_fire_s"].notna().sum() > 50
    assert p["covered_3min"].sum() > 50
    for col in ("t_micro_s", "t_fire_s", "d_hydrant_net_m"):
        a, b = w[col].to_numpy(float), p[col].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        assert np.nanmax(np.abs(a - b)) <= 1e-6, col
    for col in ("covered_3min", "covered_5min", "water_covered", "water_deficient",
                "fire_station_id", "micro_station_id", "n_micro_3min", "access_issue",
                "water_issue", "risk_index", "risk_grade", "subdistrict"):  # fmt: skip
        pd.testing.assert_series_equal(w[col], p[col], check_exact=True, obj=col)


def test_partitioned_grid_figures_equal_whole(whole, parts):
    for name in ("access_by_grid", "water_by_grid"):
        pd.testing.assert_frame_equal(whole.tables[name], parts.tables[name], check_exact=True)
    cols = [c for c in whole.layers["grids"] if c != "geometry"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(whole.layers["grids"][cols]), pd.DataFrame(parts.layers["grids"][cols]),
        check_exact=True,
    )  # fmt: skip
    pd.testing.assert_frame_equal(whole.subdistricts, parts.subdistricts, check_exact=True)
    assert whole.totals == parts.totals


def test_station_serves_buildings_across_the_border(whole, parts):
    """Fire station ZD01 stands in 示范八居委; buildings of 示范七居委 have it as their
    fastest fire station, with the whole-region time."""
    b, st = parts.buildings, parts.layers["stations"]
    where = st.set_index("station_id")["subdistrict"]
    assert where["ZD01"] == "示范八居委"
    served = b[(b["fire_station_id"] == "ZD01") & (b["subdistrict"] == "示范七居委")]
    assert len(served) >= 3
    assert "B01653" in set(served["building_id"])
    one = served.index[served["building_id"] == "B01653"][0]
    assert parts.buildings.at[one, "t_fire_s"] == whole.buildings.at[one, "t_fire_s"] <= 300
    # Micro-stations too: some buildings are reached first from a station of another cell.
    micro = b["micro_station_id"].map(where)
    assert ((micro != b["subdistrict"]) & micro.notna()).sum() > 50


def test_ranking_counts_every_building(parts):
    r = parts.subdistricts
    assert list(r["rank"]) == list(range(1, 9))
    assert r["risk_index_mean"].is_monotonic_decreasing
    assert r["buildings"].sum() == parts.totals["buildings"] == 2560
    # Region totals are the buildings' own counts, independent of the ranking's arithmetic.
    b = parts.buildings
    assert parts.totals["buildings_covered_3min"] == int(b["covered_3min"].sum())
    assert parts.totals["hazards_open"] == int(
        parts.layers["hazards"]["status"].isin(["open", "overdue"]).sum()
    )
    assert r["hazards_open"].sum() == parts.totals["hazards_open"]


def test_horizon_rule_marks_beyond():
    b = pd.DataFrame({
        "t_fire_s": [100.0, 400.0, np.nan], "fire_station_id": ["A", "B", None],
        "shortfall_5min_s": [0.0, 100.0, np.nan], "t_micro_s": [50.0, 50.0, 50.0],
        "access_issue": ["", "", "too far from road (200 m)"],
        "d_hydrant_net_m": [10.0, 500.0, np.nan], "hydrant_id_nearest": ["H1", "H2", None],
        "water_covered": [True, False, False], "water_issue": ["", "beyond (nearest 500 m)", ""],
    })  # fmt: skip
    out = beyond_horizon(b, horizon_s=300, water_m=300)
    assert out["t_fire_s"].isna().tolist() == [False, True, True]
    assert out["fire_station_id"].isna().tolist() == [False, True, True]
    assert out["shortfall_5min_s"].isna().tolist() == [False, True, True]
    assert out["access_issue"].tolist() == ["", "fire: not reached within 300 s",
                                            "too far from road (200 m)"]  # fmt: skip
    assert out["hydrant_id_nearest"].isna().tolist() == [False, True, True]
    assert (
        out["water_issue"]
        .iloc[1]
        .startswith("no working hydrant or usable water source within 300 m")
    )


def test_clip_network_keeps_costs_and_restrictions(whole):
    table = whole.run.network
    keep = np.arange(0, table.n_edges, 2)
    sub = clip_network(table, keep)
    assert sub.n_edges == len(keep)
    assert np.array_equal(sub.length, table.length[keep])
    assert np.array_equal(sub.node_ids[sub.u], table.node_ids[table.u[keep]])
    assert np.array_equal(sub.highway.values(), table.highway.values()[keep])
    # Clipping by all edges gives the same network back, edge for edge.
    same = clip_network(table, np.arange(table.n_edges))
    assert np.array_equal(same.node_ids, table.node_ids)
    assert np.array_equal(same.u, table.u) and np.array_equal(same.v, table.v)


# --------------------------------------------------------------------------------------------
# On dask.distributed: the same results, a worker killed mid-run included


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", silence_logs=logging.ERROR) as c:  # fmt: skip
        yield c


@pytest.mark.slow
def test_killed_worker_does_not_change_the_result(cluster, region_path, parts):
    """One worker is killed (SIGKILL) while it runs a partition; Dask reschedules it."""
    import os
    import signal
    import threading
    import time

    from distributed import Client

    killed: list[str] = []
    with Client(cluster.scheduler_address) as watcher:
        pids = watcher.run(os.getpid)

        def kill_one() -> None:
            deadline = time.monotonic() + 60
            while not killed and time.monotonic() < deadline:
                for address, keys in watcher.processing().items():
                    if any(str(k).startswith("firegrid-") for k in keys) and address in pids:
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(address)
                        return
                time.sleep(0.02)

        thread = threading.Thread(target=kill_one, daemon=True)
        thread.start()
        result = run_region(region_path, scheduler=cluster.scheduler_address, progress=False)
        thread.join(timeout=5)
    assert killed, "no worker was running a partition to kill"
    assert result.failures == []
    cols = ["t_micro_s", "t_fire_s", "covered_3min", "water_deficient", "risk_index"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(result.buildings[cols]), pd.DataFrame(parts.buildings[cols]), check_exact=True
    )
    for name in ("access_by_grid", "water_by_grid"):
        pd.testing.assert_frame_equal(result.tables[name], parts.tables[name], check_exact=True)
    assert result.totals == parts.totals


# --------------------------------------------------------------------------------------------
# A subdistrict that fails on bad input: named with its file, the others written, exit 2


@pytest.mark.slow
def test_failed_subdistrict_named_others_written(tmp_path, capsys):
    import json

    from firegrid.cli import main

    good = demo_region_toml(tmp_path).read_text(encoding="utf-8")
    good = good.replace("[region]\npartition_level = 2\nhorizon_s = 300", "[district]", 1)
    # The good subdistrict's grids carry the user's own columns (a grid worker's phone, a
    # remark): the grid table for leaders shows neither (no [map] allow_fields names them).
    import geopandas as gpd

    grids = gpd.read_file(DEMO / "grids.gpkg", layer="grids").assign(
        网格员电话="13800000000", 备注="内部说明"
    )
    grids.to_file(tmp_path / "grids.gpkg", layer="grids")
    good = good.replace((DEMO / "grids.gpkg").as_posix(), (tmp_path / "grids.gpkg").as_posix())
    (tmp_path / "good.toml").write_text(good, encoding="utf-8")
    stations = (DEMO / "stations.csv").read_text(encoding="utf-8")
    assert ",60,24," in stations
    bad_csv = tmp_path / "stations_bad.csv"
    bad_csv.write_text(stations.replace(",60,24,", ",sixty,24,", 1), encoding="utf-8")
    bad = good.replace((DEMO / "stations.csv").as_posix(), bad_csv.as_posix())
    (tmp_path / "bad.toml").write_text(bad, encoding="utf-8")
    (tmp_path / "two.toml").write_text(
        '[region]\nname = "两个街道 | <b>test</b>"\nas_of = 2026-06-30\n\n'
        '[[region.subdistricts]]\nconfig = "good.toml"\nname = "好街道"\n\n'
        '[[region.subdistricts]]\nconfig = "bad.toml"\nname = "坏街道"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    code = main(["region", str(tmp_path / "two.toml"), "--out", str(out), "--workers", "0", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("坏街道: ")
    assert "stations_bad.csv" in err[0] and "sixty" in err[0]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert [r["subdistrict"] for r in summary["subdistricts"]] == ["好街道"]
    assert summary["figures"]["region"]["buildings"] == 2560
    assert summary["figures"]["region"]["failed"] == 1
    table = (out / "grid_summary.csv").read_text(encoding="utf-8-sig")
    assert "网格员电话" not in table and "13800000000" not in table
    assert "备注" not in table and "内部说明" not in table  # the user's own column
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "<b>" not in md and "&lt;b&gt;" in md  # the region's name is escaped
    assert "| 1 | 好街道 | 2,560 |" in md
    b = gpd.read_parquet(out / "parquet" / "buildings")
    assert len(b) == 2560 and set(b["subdistrict"]) == {"好街道"}


@pytest.mark.slow
def test_outputs_files_and_postgis(parts, tmp_path):
    """Every output file, and with [output] database every layer in one new PostGIS schema."""
    import json
    from dataclasses import replace

    import geopandas as gpd

    from firegrid.region.report import write_region_outputs
    from tests._postgis import postgis_server

    with postgis_server() as server:
        output = replace(parts.region.output, database=server.url, database_schema="region_run")
        result = replace(parts, region=replace(parts.region, output=output), notes=[])
        written = write_region_outputs(result, tmp_path / "out")
        with server.connect() as conn:
            rows = conn.execute(
                "SELECT subdistrict, count(*) FROM region_run.buildings GROUP BY 1 ORDER BY 1"
            ).fetchall()
    assert {"map.html", "results.gpkg", "parquet", "grid_summary.csv", "summary.json"} <= set(
        written
    )
    by_sub = parts.buildings.groupby("subdistrict").size()
    assert dict(rows) == {k: int(v) for k, v in by_sub.items()}
    assert any("region_run" in n for n in result.notes)
    b = gpd.read_parquet(tmp_path / "out" / "parquet" / "buildings")
    assert len(b) == len(parts.buildings) and b.crs == parts.buildings.crs
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["figures"]["region"]["buildings_covered_3min"] == int(
        parts.buildings["covered_3min"].sum()
    )
    assert [r["subdistrict"] for r in summary["subdistricts"]] == list(
        parts.subdistricts["subdistrict"]
    )
    html = (tmp_path / "out" / "map.html").read_text(encoding="utf-8")
    assert "示范七居委" in html and "B01653" not in html  # cells, not buildings
    # Written again into the same folder: FireGrid's own parquet folder is replaced, not
    # refused as foreign; a file put into it makes it foreign (kept, and the run refused).
    from firegrid.region.report import prepare_region_folder

    out = prepare_region_folder(tmp_path / "out")
    write_region_outputs(replace(parts, notes=[]), out)
    assert len(gpd.read_parquet(out / "parquet" / "buildings")) == len(parts.buildings)
    (out / "parquet" / "buildings" / "mine.txt").write_text("user file", encoding="utf-8")
    with pytest.raises(ConfigError, match="did not write"):
        prepare_region_folder(out)
    with pytest.raises(ConfigError, match="did not write"):
        write_region_outputs(replace(parts, notes=[]), out)
    assert (out / "parquet" / "buildings" / "mine.txt").read_text(encoding="utf-8") == "user file"


# --------------------------------------------------------------------------------------------
# The embedded demo region (data/region) against its one-district reference


def _grid_levels_beyond_three() -> bool:
    from firegrid.spatial.io.layers import SCHEMAS

    level = next(c for c in SCHEMAS["grids"].columns if c.name == "level")
    return level.hi is None or level.hi >= 4


@pytest.mark.slow
@pytest.mark.skipif(
    not _grid_levels_beyond_three(),
    reason="the grids layer schema (spatial/io/layers.py) still caps level at 3; the demo "
    "region has 4 levels",
)
def test_demo_region_equals_the_district_pipeline():
    """data/region/region.toml (4 subdistricts as partitions) against data/region/district.toml
    (the same layers as one district, the ordinary pipeline, no horizon): with the default
    horizon (600 s) every building's figures agree."""
    from firegrid.pipeline import run_pipeline

    data = Path(__file__).resolve().parents[1] / "data" / "region"
    region = run_region(data / "region.toml", workers=0)
    ref = run_pipeline(data / "district.toml", until="risk", progress=False).buildings
    ref = beyond_horizon(ref, horizon_s=region.halo.horizon_s, water_m=region.halo.water_m)
    b = region.buildings
    assert len(region.partitions) == 4 and not region.failures
    for col in ("t_micro_s", "t_fire_s"):
        a, r = b[col].to_numpy(float), ref[col].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(r)) and np.nanmax(np.abs(a - r)) <= 1e-6
    for col in ("covered_3min", "covered_5min", "water_deficient", "risk_index", "risk_grade",
                "fire_station_id"):  # fmt: skip
        pd.testing.assert_series_equal(b[col], ref[col], check_exact=True, obj=col)
    # Fire station ZD01 (north-east) is the fastest within 5 minutes for buildings of three
    # subdistricts (data/region/README.md).
    served = b.loc[(b["fire_station_id"] == "ZD01") & b["covered_5min"], "subdistrict"]
    assert served.nunique() >= 3


@pytest.mark.slow
def test_dask_size_advice_is_not_printed_per_partition(cluster, region_path):
    """Dask warns about every large task it sends (a window carries its streets: 120 MiB at
    full size); a user would get one such line per partition. The threshold is lowered here
    so the demo's small windows trigger it."""
    import warnings

    import dask

    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1kB"}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_region(region_path, scheduler=cluster.scheduler_address, progress=False)
    assert result.failures == []
    assert not [w for w in caught if "large" in str(w.message).lower()], caught[:3]
