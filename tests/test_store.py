"""GeoParquet datasets of a run's layers, read back with geopandas and pyarrow (not our reader)."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from shapely.geometry import Point, box

from firegrid.spatial.errors import ConfigError
from firegrid.store import NO_PARTITION, read_geoparquet, run_schema_name, write_geoparquet

CRS = "EPSG:32651"
SUBDISTRICTS = ["街道甲", "007", "a/b c%", None]


@pytest.fixture
def buildings() -> gpd.GeoDataFrame:
    n = 40
    rng = np.random.default_rng(5)
    return gpd.GeoDataFrame(
        {
            "building_id": [f"B{i:03d}" for i in range(n)],
            "subdistrict": [SUBDISTRICTS[i % 4] for i in range(n)],
            "t_micro_s": rng.uniform(30, 400, n),
            "covered_3min": rng.random(n) < 0.5,
            "floors": pd.array(rng.integers(1, 30, n), dtype="Int64"),
            "tags": [["highway", i] if i % 3 else None for i in range(n)],
            "联系电话": [f"1391234{i:04d}" for i in range(n)],
        },
        geometry=[box(x, x, x + 5, x + 5) if x % 7 else None for x in range(n)],
        crs=CRS,
    )


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("building_id").reset_index(drop=True)


def test_partitioned_dataset_reads_whole_with_geopandas(buildings, tmp_path):
    written = write_geoparquet({"buildings": buildings}, tmp_path, partition_by="subdistrict")
    folder = written["buildings"]
    assert folder == tmp_path / "buildings"
    parts = sorted(p.name for p in folder.iterdir())
    assert parts == sorted(
        ["subdistrict=%E8%A1%97%E9%81%93%E7%94%B2", "subdistrict=007", "subdistrict=a%2Fb%20c%25"]
        + [f"subdistrict={NO_PARTITION.replace('(', '%28').replace(')', '%29')}"]
    )
    back = gpd.read_parquet(folder)  # geopandas itself, the folder as one dataset
    assert len(back) == len(buildings)
    assert back.crs == buildings.crs
    assert set(back["subdistrict"].astype(str)) == {"街道甲", "007", "a/b c%", NO_PARTITION}
    back, want = _by_id(back), _by_id(buildings)
    assert (back["subdistrict"].astype(str) == want["subdistrict"].fillna(NO_PARTITION)).all()
    assert np.allclose(back["t_micro_s"], want["t_micro_s"])
    assert back.geometry.equals(want.geometry)
    assert "联系电话" not in back  # personal: dropped as from results.gpkg


def test_read_geoparquet_restores_the_partition_values(buildings, tmp_path):
    # Every value looks like a number: pyarrow alone would read "007" as 7.
    buildings["subdistrict"] = ["007", "010"] * 20
    write_geoparquet({"buildings": buildings}, tmp_path, partition_by="subdistrict")
    assert (
        gpd.read_parquet(tmp_path / "buildings")["subdistrict"].astype(str).isin(["7", "10"]).all()
    )
    back = _by_id(read_geoparquet(tmp_path / "buildings"))
    assert back["subdistrict"].tolist() == _by_id(buildings)["subdistrict"].tolist()
    assert back.crs == buildings.crs


def test_missing_partition_values_read_back_missing(buildings, tmp_path):
    write_geoparquet({"buildings": buildings}, tmp_path, partition_by="subdistrict")
    back = _by_id(read_geoparquet(tmp_path / "buildings"))
    assert back["subdistrict"].isna().sum() == 10
    assert back["tags"].iloc[1] == '["highway", 1]' and pd.isna(back["tags"].iloc[0])
    assert back["floors"].tolist() == _by_id(buildings)["floors"].tolist()


def test_layers_without_the_column_and_plain_tables(buildings, tmp_path):
    hydrants = gpd.GeoDataFrame({"hydrant_id": ["H1", "H2"]}, geometry=[Point(0, 0)] * 2, crs=CRS)
    table = pd.DataFrame({"level": [1, 2], "open": [3, 4]})
    written = write_geoparquet(
        {"hydrants": hydrants, "escalation": table, "empty": hydrants.iloc[:0]},
        tmp_path,
        partition_by="subdistrict",
    )
    assert set(written) == {"hydrants", "escalation"}
    assert [p.name for p in written["hydrants"].iterdir()] == ["part-0.parquet"]
    assert gpd.read_parquet(written["hydrants"])["hydrant_id"].tolist() == ["H1", "H2"]
    assert pq.read_table(written["escalation"]).to_pandas().equals(table)
    assert read_geoparquet(written["escalation"]).equals(table)


def test_personal_columns_kept_only_when_asked(buildings, tmp_path):
    write_geoparquet({"b": buildings}, tmp_path / "drop")
    write_geoparquet({"b": buildings}, tmp_path / "allow", allow=["联系电话"])
    write_geoparquet({"b": buildings}, tmp_path / "keep", personal="keep")
    assert "联系电话" not in gpd.read_parquet(tmp_path / "drop" / "b")
    assert "联系电话" in gpd.read_parquet(tmp_path / "allow" / "b")
    assert "联系电话" in gpd.read_parquet(tmp_path / "keep" / "b")


def test_never_writes_over_a_folder(buildings, tmp_path):
    (tmp_path / "buildings").mkdir()
    (tmp_path / "buildings" / "mine.txt").write_text("user's")
    with pytest.raises(ConfigError, match="exists"):
        write_geoparquet({"buildings": buildings}, tmp_path)
    assert (tmp_path / "buildings" / "mine.txt").read_text() == "user's"
    with pytest.raises(ConfigError, match="plain file name"):
        write_geoparquet({"../x": buildings}, tmp_path)


def test_run_schema_name():
    at = datetime(2026, 7, 1, 8, 30, 5, tzinfo=UTC)
    assert run_schema_name("演示街道 Demo subdistrict — synthetic", at=at) == (
        "firegrid_demo_subdistrict_synthetic_20260701_083005"
    )
    assert run_schema_name("青浦区", at=at) == "firegrid_run_20260701_083005"
    long = run_schema_name("x" * 200, at=at)
    assert len(long.encode()) <= 63 and long.endswith("_20260701_083005")


def test_output_database_settings_are_checked():
    from firegrid.reports import OutputOptions

    options = OutputOptions.from_mapping(
        {"database": "postgresql://u:pw@db/fire", "database_schema": "青浦_2026"}
    )
    assert options.database_schema == "青浦_2026"
    with pytest.raises(ConfigError, match=r"\[output\] database must be a PostgreSQL URL") as e:
        OutputOptions.from_mapping({"database": "mysql://u:secret@db/fire"})
    assert "secret" not in str(e.value)
    with pytest.raises(ConfigError, match="longer than PostgreSQL's 63 bytes"):
        OutputOptions.from_mapping({"database_schema": "表" * 22})
    with pytest.raises(ConfigError, match="control character"):
        OutputOptions.from_mapping({"database_schema": "a\x00b"})
