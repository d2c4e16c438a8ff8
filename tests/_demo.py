"""The embedded demo run once per test session (it takes tens of seconds), shared by tests."""

from __future__ import annotations

import atexit
import contextlib
import io
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo"
DEMO_CONFIG = DEMO / "demo.toml"
OUTPUT_FILES = (
    "map.html",
    "results.gpkg",
    "grid_summary.csv",
    "grid_summary.xlsx",
    "summary.md",
    "summary.json",
)


def requires_demo():
    return pytest.mark.skipif(
        not DEMO_CONFIG.exists(),
        reason=f"demo district not found at {DEMO} (python data/make_demo.py)",
    )


def _scratch(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@cache
def demo_cli_run() -> tuple[Path, int, str, str]:
    """``firegrid demo --out DIR`` run in-process once: (folder, exit code, stdout, stderr)."""
    from firegrid.cli import main

    folder = _scratch("firegrid-demo-") / "firegrid-demo-output"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", "--out", str(folder), "--quiet"])
    return folder, code, out.getvalue(), err.getvalue()


@cache
def demo_pipeline_run():
    """The demo through :func:`firegrid.pipeline.run_pipeline` (every step), kept in memory."""
    from firegrid.pipeline import run_pipeline

    return run_pipeline(DEMO_CONFIG, progress=False)


def transformed_demo(transform, *, prefix: str) -> Path:
    """A scratch copy of the demo district with ``transform(frame, layer_name)`` applied to
    every layer file; CSV ledgers keep their encoding. Returns the copy's folder."""
    import tomllib

    import geopandas as gpd

    from firegrid.spatial.io.readers import read_csv_any_encoding

    folder = _scratch(prefix) / "demo"
    shutil.copytree(DEMO, folder)
    config = tomllib.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    for name, spec in config["layers"].items():
        path = folder / spec["file"]
        if path.suffix == ".csv":
            raw = path.read_bytes()
            df, encoding = read_csv_any_encoding(path)
            bom = raw.startswith(b"\xef\xbb\xbf")
            enc = "utf-8-sig" if bom else ("gb18030" if encoding == "gb18030" else "utf-8")
            transform(df, name).to_csv(path, index=False, encoding=enc)
        else:
            layer = spec.get("layer")
            gdf = transform(gpd.read_file(path, layer=layer), name)
            path.unlink()
            gdf.to_file(path, layer=layer)
    return folder


# Columns whose values must stay valid canonical choices, dates or coordinates (validation would
# reject a payload there, which is a defence of its own but would stop the run).
_KEEP = {
    "use", "wiring_condition", "kind", "status", "category", "vehicle", "date",
    "类型", "状态", "类别", "车辆", "发现日期", "整改期限", "整改日期", "经度", "纬度",
}  # fmt: skip
XSS_COLUMN = '<img src=x onerror="window.__xss=1">'


def _inject(df, payload: str):
    """Append ``payload`` to every non-empty free-text cell (ids included, so links hold)."""
    import pandas as pd

    out = df.copy()
    geom = getattr(out, "_geometry_column_name", None)
    for col in out.columns:
        if col == geom or col in _KEEP:
            continue
        s = out[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        text = s.astype("string")
        filled = text.notna() & (text.str.strip() != "")
        if pd.to_numeric(text[filled], errors="coerce").notna().all():
            continue  # numbers stored as text (CSV ledgers)
        # missing stays None (pd.NA in an object column would be written as the text "<NA>")
        out[col] = text.where(~filled, text + payload).astype(object).where(text.notna(), None)
    return out


@cache
def xss_demo_config() -> Path:
    """A copy of the demo with an XSS payload in every free-text column of every layer, an
    extra column whose header is a payload, and ``[map] allow_fields = ["all"]`` so that all
    of it is allowed into the HTML (personal columns excepted)."""
    from tests._mapdata import XSS

    def inject(frame, layer):
        frame = _inject(frame, XSS)
        if layer == "buildings":
            frame[XSS_COLUMN] = XSS
        return frame

    folder = transformed_demo(inject, prefix="firegrid-xss-")
    text = (folder / "demo.toml").read_text(encoding="utf-8")
    text = text.replace("allow_fields = []", 'allow_fields = ["all"]\nbasemap = "none"')
    # the district name becomes the map's title and <title>: a TOML literal string
    assert "'" not in XSS and "\n" not in XSS
    text = re.sub(r'(?m)^name = ".*"$', lambda m: f"name = 'Demo{XSS}'", text, count=1)
    assert 'allow_fields = ["all"]' in text
    (folder / "demo.toml").write_text(text, encoding="utf-8")
    return folder / "demo.toml"


@cache
def xss_demo_map() -> tuple[Path, object]:
    """The map of the XSS demo (every analysis step but siting), saved as HTML: (path, run)."""
    from firegrid.pipeline import map_html, run_pipeline

    run = run_pipeline(xss_demo_config(), until="risk", progress=False)
    path = xss_demo_config().parent / "map.html"
    path.write_text(map_html(run), encoding="utf-8")
    return path, run
