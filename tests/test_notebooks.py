"""Both notebooks execute top to bottom on the demo district; a failing cell fails the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._demo import requires_demo

nbformat = pytest.importorskip(
    "nbformat", reason="nbformat not installed (pip install -e '.[test]')"
)
nbclient = pytest.importorskip(
    "nbclient", reason="nbclient not installed (pip install -e '.[test]')"
)
pytest.importorskip("ipykernel", reason="ipykernel not installed (pip install -e '.[test]')")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@requires_demo()
@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["01_analyst_end_to_end.ipynb", "02_planner_coverage.ipynb"], ids=["analyst", "planner"]
)
def test_notebook_executes_on_the_demo(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # run from the notebooks folder
        allow_errors=False,
    )
    client.execute()  # raises CellExecutionError naming the cell and the traceback
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code)
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    # the last cell shows the map inline, self-contained (no CDN)
    html = code[-1]["outputs"][-1]["data"]["text/html"]
    assert "<iframe srcdoc=" in html and "leaflet" in html.lower()
    assert "cdn.jsdelivr" not in html and "&lt;script src=" not in html
