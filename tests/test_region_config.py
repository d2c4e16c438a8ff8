"""The region config: both forms parse, every mistake stops with one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from firegrid.region.config import load_region_config
from firegrid.region.partitions import partition_cells
from firegrid.spatial.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[1]


def test_demo_region_parses_as_split_form():
    region = load_region_config(ROOT / "data" / "region" / "region.toml")
    assert region.split and region.partition_level == 2
    assert region.level_name(2) == "街道" and region.level_name(7) == "level 7"
    assert str(region.as_of) == "2026-06-30"
    assert set(region.base.layers) >= {"grids", "buildings", "stations", "hydrants"}
    assert region.horizon_s is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "region.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[network]\n", "needs a [region] table"),
        ("[region]\npartition_levle = 2\n", "did you mean 'partition_level'"),
        ("[region]\npartition_level = 0\n", "partition_level must be a grid level"),
        ("[region]\nhorizon_s = -5\n", "horizon_s must be seconds > 0"),
        ("[region]\nlevel_names = \"街道\"\n", "level_names must be a list"),
        ("[region]\n[district]\nname = 'x'\n", "not [district]"),
        ("[region]\nsubdistricts = []\n", "one or more entries"),
        ("[region]\n[[region.subdistricts]]\nname = 'a'\n", 'needs config = "'),
        ("[region]\n[[region.subdistricts]]\nconfig = 'nope.toml'\n", "config file not found"),
        ("[region]\n[[region.subdistricts]]\nconfig = 'a.toml'\n[layers.buildings]\n",
         "unknown section"),
    ],
)  # fmt: skip
def test_mistakes_name_the_file_and_key(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_region_config(path)
    assert str(path) in str(info.value)
    assert words in str(info.value)


def test_layer_mistakes_speak_of_region_not_district(tmp_path):
    text = (ROOT / "data" / "region" / "region.toml").read_text(encoding="utf-8")
    text = text.replace('as_of = "2026-06-30"', 'as_of = "30/06/2026"')
    path = _write(tmp_path, text)  # the date is checked before any file is read
    with pytest.raises(ConfigError, match=r"\[region\] as_of"):
        load_region_config(path)


def test_subdistrict_names_must_differ(tmp_path):
    demo = (ROOT / "data" / "demo" / "demo.toml").as_posix()
    path = _write(tmp_path, "[region]\n" + f"[[region.subdistricts]]\nconfig = '{demo}'\n" * 2)
    with pytest.raises(ConfigError, match="twice"):
        load_region_config(path)


def test_partition_cells_name_each_cell_once():
    square = shapely.box(0, 0, 1, 1)
    grids = gpd.GeoDataFrame(
        {"grid_id": ["A", "B", "C"], "level": [1, 1, 2], "name": ["东", "东", None]},
        geometry=[square] * 3,
        crs="EPSG:32651",
    )
    cells = partition_cells(grids, 1)
    assert list(cells["partition"]) == ["东 (A)", "东 (B)"]
    assert list(partition_cells(grids, 2)["partition"]) == ["C"]
    with pytest.raises(InputError, match="no cell of that level"):
        partition_cells(grids, 3)


def test_region_level_names_are_the_grids_level_names(tmp_path):
    text = (ROOT / "data" / "region" / "region.toml").read_text(encoding="utf-8")
    region = load_region_config(
        _write(
            tmp_path, text.replace("roads.osm", (ROOT / "data" / "region" / "roads.osm").as_posix())
        )
    )
    assert region.base.params["grids"].level_names == ("区", "街道", "社区", "网格")
    clash = text.replace("[network]", '[grids]\nlevel_names = ["a", "b", "c", "d"]\n\n[network]', 1)
    with pytest.raises(ConfigError, match="differ"):
        load_region_config(_write(tmp_path, clash))
