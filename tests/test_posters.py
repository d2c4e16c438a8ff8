"""Printable posters: the CJK font embedded and searchable, the pages, contacts, the command."""

from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from firegrid.cli import main
from firegrid.maps import fonts
from firegrid.maps.poster_map import framed_view, nice_length, street_labels
from firegrid.maps.poster_options import PosterOptions
from firegrid.maps.posters import check_public_fields, poster_pages, write_posters
from firegrid.outputs import read_manifest
from firegrid.spatial.errors import ConfigError
from tests._mapdata import synthetic_results

pypdf = pytest.importorskip("pypdf", reason="pypdf reads the posters' PDF text and fonts")

PHONE = "13912345678"
PRIVATE = "18800001111"


@pytest.fixture(scope="module")
def layers():
    out = synthetic_results(n_buildings=40)
    grids = out["grids"]
    # a cell name that mathtext would typeset if it were parsed
    grids.loc[grids["grid_id"] == "C1-1", "name"] = "网格$x^2$一"
    grids["grid_worker"] = "李四"
    grids["worker_phone"] = PHONE
    grids["resident_phone"] = PRIVATE  # personal, named nowhere: must stay off the poster
    out["roads"]["name"] = ["青林街", "湖江路", "湖江路", "梅园路", None]
    return out


def _pdf(path):
    reader = pypdf.PdfReader(str(path))
    text = "".join(page.extract_text() for page in reader.pages)
    fonts_seen = []
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            for desc in font.get("/DescendantFonts", []):
                descriptor = desc.get_object()["/FontDescriptor"].get_object()
                fonts_seen.append((str(font["/BaseFont"]), sorted(descriptor.keys())))
    return text, fonts_seen


def test_poster_pdf_embeds_a_cjk_truetype_font_and_the_cell_name_as_text(layers, tmp_path):
    pages = poster_pages(layers["grids"], district="示范街道", level=3)
    cell = next(p for p in pages if p.grid_id == "C1-1")
    options = PosterOptions(public_fields=("grid_worker", "worker_phone"))
    (path,) = write_posters(
        layers, tmp_path, district="示范街道", options=options, pages=[cell], as_of="2026-06-30"
    )
    text, seen = _pdf(path)
    assert "网格$x^2$一" in text  # the name, as written: searchable, not typeset as math
    assert "示范街道" in text and "李四" in text and PHONE in text
    assert PRIVATE not in text
    cjk = [(name, keys) for name, keys in seen if fonts.SUBSET_FAMILY.replace(" ", "") in name]
    assert cjk, seen
    # embedded as TrueType outlines (FontFile2 holding glyf data, not CFF)
    assert all("/FontFile2" in keys for _, keys in cjk)
    for label in ("消火栓", "微型消防站", "联系方式", "1级 重大", "青林街", "梅园路"):
        assert label in text, label


def test_png_page_at_low_dpi_and_the_district_page(layers, tmp_path):
    pages = poster_pages(layers["grids"], district="示范街道", level=2)
    assert [p.grid_id for p in pages] == [None, "C1", "C2"]
    (path,) = write_posters(
        layers,
        tmp_path,
        district="示范街道",
        options=PosterOptions(format="png", dpi=50),
        pages=pages[:1],
    )
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    assert (width, height) == (int(297 / 25.4 * 50), int(420 / 25.4 * 50))  # A3 at 50 dpi


def test_truetype_subset_keeps_the_outlines_of_the_source_font(tmp_path):
    from fontTools.pens.boundsPen import BoundsPen
    from fontTools.ttLib import TTFont

    path = fonts.truetype_subset("消防网格", tmp_path)
    sub = TTFont(path)
    source = TTFont(fonts.cjk_font_path(), fontNumber=0)
    assert "glyf" in sub and "CFF " not in sub
    assert sub["name"].getDebugName(1) == fonts.SUBSET_FAMILY
    src_cmap, sub_cmap = source.getBestCmap(), sub.getBestCmap()
    for ch in "消防网格A1":
        a, b = BoundsPen(source.getGlyphSet()), BoundsPen(sub.getGlyphSet())
        source.getGlyphSet()[src_cmap[ord(ch)]].draw(a)
        sub.getGlyphSet()[sub_cmap[ord(ch)]].draw(b)
        # quadratic curves within 1 unit of the cubic ones: the same glyph box (±2 units)
        assert np.allclose(a.bounds, b.bounds, atol=2), ch
    assert ord("钢") not in sub_cmap  # only what the page shows (and the base characters)


def test_street_labels_name_the_longest_streets_once_along_them():
    roads = gpd.GeoDataFrame(
        {
            "name": ["长街", "长街", "短街", "斜街", None],
            "highway": ["residential"] * 5,
        },
        geometry=[
            shapely.LineString([(0, 0), (300, 0)]),
            shapely.LineString([(300, 0), (400, 0)]),
            shapely.LineString([(0, 100), (50, 100)]),
            shapely.LineString([(0, 0), (200, 200)]),
            shapely.LineString([(0, 50), (900, 50)]),
        ],
        crs="EPSG:32651",
    )
    labels = street_labels(roads, shapely.box(-10, -10, 1000, 1000), limit=2)
    assert sorted(labels["name"]) == ["斜街", "长街"]  # by length; the nameless one never
    long = labels.set_index("name").loc["长街"]
    assert (long.x, long.y, long.angle) == pytest.approx((150, 0, 0))
    assert labels.set_index("name").loc["斜街", "angle"] == pytest.approx(45)


def test_scale_bar_length_and_view_aspect():
    assert [nice_length(w) for w in (90, 1000, 2600, 14000)] == [10, 200, 500, 2000]
    view = framed_view((0, 0, 100, 400), 0.9)
    w, h = view[2] - view[0], view[3] - view[1]
    assert math.isclose(w / h, 0.9) and view[0] < 0 and view[3] > 400


def test_pages_file_names_stay_inside_the_folder(layers):
    grids = layers["grids"].copy()
    grids.loc[grids["grid_id"] == "C2-2", "grid_id"] = "../../etc/x"
    pages = poster_pages(grids, district="示范街道")
    stems = [p.stem for p in pages]
    assert all(re.fullmatch(r"poster_\d{3}_[0-9A-Za-z_-]+", s) for s in stems)
    assert len(set(stems)) == len(stems)
    with pytest.raises(ConfigError, match="no cell of level 5; its levels are"):
        poster_pages(grids, district="x", level=5)


def test_public_fields_must_be_columns_and_options_are_checked(layers):
    with pytest.raises(ConfigError, match=r"cfg\.toml: \[posters\] public_fields names 'phone'"):
        check_public_fields(layers["grids"], ["grid_worker", "phone"], where="cfg.toml")
    with pytest.raises(ConfigError, match=r"\[posters\] has unknown key 'levle'"):
        PosterOptions.from_mapping({"levle": 3})
    with pytest.raises(ConfigError, match="dpi must be between"):
        PosterOptions.from_mapping({"dpi": 5})


def test_posters_command_from_an_output_folder(layers, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    grids = layers["grids"].drop(columns=["resident_phone"])
    for name in ("grids", "buildings", "roads", "stations", "isochrones"):
        frame = grids if name == "grids" else layers[name]
        frame = frame.drop(columns=[c for c in frame if c == "户主姓名"])
        frame.to_file(run / "results.gpkg", layer=name, driver="GPKG")
    (run / "summary.json").write_text('{"district": "示范街道", "as_of": "2026-06-30"}')
    out = tmp_path / "posters"
    code = main(["posters", str(run), "--out", str(out), "--level", "2", "-q"])
    assert code == 0
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert files == [
        "poster_000_district.pdf",
        "poster_001_C1.pdf",
        "poster_002_C2.pdf",
    ]
    assert set(read_manifest(out)) == set(files)  # written by FireGrid, swapped in whole
    text, _ = _pdf(out / "poster_002_C2.pdf")
    assert "示范街道 · 社区2" in text and "2026-06-30" in text
    # the run's folder is not a place for posters: the next run would refuse the stranger
    assert main(["posters", str(run), "--out", str(run / "p"), "-q"]) == 2
    assert "lies inside" in capsys.readouterr().err
    assert main(["posters", str(run), "--out", str(out), "--public-fields", "nobody"]) == 2
    assert pd.Series(["nobody"]).isin(grids.columns).sum() == 0


def test_without_the_font_package_a_system_cjk_font_or_one_clear_line(monkeypatch):
    import sys

    from matplotlib import font_manager

    package_font = fonts.cjk_font_path()
    dejavu = font_manager.findfont("DejaVu Sans")
    monkeypatch.setitem(sys.modules, "pylopdf_fonts_zh_cn", None)  # not installed
    fonts.cjk_font_path.cache_clear()
    try:
        # a system font of a known CJK family is used when it has Chinese glyphs ...
        entry = font_manager.FontEntry(fname=str(package_font), name="Noto Sans CJK SC")
        monkeypatch.setattr(font_manager.fontManager, "ttflist", [entry])
        assert fonts.cjk_font_path() == package_font
        fonts.cjk_font_path.cache_clear()
        # ... a font of that name without them is not, and with none the message says what
        # to install
        entry = font_manager.FontEntry(fname=dejavu, name="Noto Sans CJK SC")
        monkeypatch.setattr(font_manager.fontManager, "ttflist", [entry])
        with pytest.raises(ConfigError, match=r"install the pylopdf-fonts-zh-cn package"):
            fonts.cjk_font_path()
    finally:
        fonts.cjk_font_path.cache_clear()
