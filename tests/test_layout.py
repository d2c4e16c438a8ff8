"""The package layout: one import name, imports flowing one way, no private names across modules."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Folder of each top-level package of the distribution (pyproject's package-dir).
FOLDERS = {"firegrid": "firegrid", "firegrid.spatial": "spatial", "firegrid.risk": "risk",
           "firegrid.maps": "maps"}  # fmt: skip
# Data-only packages of the wheel (no Python): the demo district and region, kept in data/.
DATA_FOLDERS = {"firegrid.data.demo": "data/demo", "firegrid.data.region": "data/region"}
# Rank of each layer: a module may import only modules of its own rank or lower.
# firegrid (application) → maps → risk → spatial; inside spatial the analyses sit above the
# network, the network above reading layers, and everything above the base modules.
RANKS = [
    ("firegrid.maps", 8),
    ("firegrid.risk", 7),
    ("firegrid.spatial.siting", 5),
    ("firegrid.spatial.water", 4),
    ("firegrid.spatial.access", 3),
    ("firegrid.spatial.network", 2),
    ("firegrid.spatial.io", 1),
    ("firegrid.spatial", 0),
    ("firegrid", 9),
]


def _modules() -> dict[str, Path]:
    out = {}
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "firegrid" and parts and f"firegrid.{parts[0]}" in FOLDERS:
                continue  # a link to a library folder, not a module of the application
            out[name] = path
    return out


MODULES = _modules()
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info")


def _rank(module: str) -> int:
    return next(
        rank for prefix, rank in RANKS if module == prefix or module.startswith(prefix + ".")
    )


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) for every import, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [a.name for a in node.names]
            # "from package import module" imports a module, not a name
            subs = [n for n in names if f"{base}.{n}" in MODULES]
            found += [(f"{base}.{n}", [], node.lineno) for n in subs]
            rest = [n for n in names if n not in subs]
            if rest:
                found.append((base, rest, node.lineno))
    return [f for f in found if f[0].split(".")[0] == "firegrid"]


def _in_type_checking(path: Path) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (annotations only, never executed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        skip = _in_type_checking(path)
        for target, _, line in _imports(name, path):
            if line in skip or target == name:
                continue
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def test_every_package_folder_is_a_package_of_the_distribution():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    assert setuptools["package-dir"] == FOLDERS | DATA_FOLDERS
    packages = {n for n, p in MODULES.items() if p.name == "__init__.py"}
    assert set(setuptools["packages"]) == packages | set(DATA_FOLDERS)
    assert all(p == "firegrid" or p.startswith("firegrid.") for p in setuptools["packages"])


def test_the_generic_folder_names_are_not_importable(tmp_path):
    # In a fresh interpreter outside the checkout (pytest puts the checkout on sys.path).
    code = "import importlib.util as u; print([n for n in ('spatial', 'risk', 'maps') if u.find_spec(n)])"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert found.stdout.strip() == "[]"
    import firegrid.maps.export

    assert Path(firegrid.maps.export.__file__).parent == ROOT / "maps"


@pytest.mark.slow
def test_the_wheel_installs_one_import_name_with_the_map_assets(tmp_path):
    # Build from a copy: setuptools leaves a build/ folder in the tree it builds.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", *FOLDERS.values(), *DATA_FOLDERS.values()):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": IGNORED} if (ROOT / name).is_dir() else {}))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("firegrid-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "firegrid"
    }
    assert "firegrid/maps/assets/leaflet.js" in names
    assert "firegrid/spatial/network/routing.py" in names


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_imports_flow_one_way():
    wrong = [
        f"{name} imports {target}"
        for name, targets in _graph().items()
        for target in targets
        if _rank(target) > _rank(name)
    ]
    assert wrong == []


def test_no_private_name_is_imported_from_another_module():
    wrong = []
    for name, path in MODULES.items():
        for target, names, line in _imports(name, path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            hidden = [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
            if private or hidden:
                wrong.append(f"{path.relative_to(ROOT)}:{line} {target} {private}")
    assert wrong == []


def test_the_layering_check_sees_a_wrong_import():
    # The checks above read the real graph; this one shows they can fail.
    assert _rank("firegrid.spatial.io.grids") < _rank("firegrid.risk.rollup")
    assert "firegrid.spatial.network.routing" in _graph()["firegrid.spatial.access.travel_times"]


def test_nothing_reaches_the_folders_by_their_generic_names():
    # Inside pytest the checkout is on sys.path, so `import maps` or resources.files("maps")
    # would work here and fail for an installed user: look for them in the source instead.
    generic = {"spatial", "risk", "maps"}
    wrong = []
    sources = {path: path.read_text(encoding="utf-8") for path in MODULES.values()}
    for folder in ("notebooks", "benchmarks", "data", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            sources[path] = path.read_text(encoding="utf-8")
        for path in sorted((ROOT / folder).glob("*.ipynb")):
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
            lines = [
                ln for ln in "\n".join(code).splitlines() if not ln.lstrip().startswith(("%", "!"))
            ]
            sources[path] = "\n".join(lines)
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = {(node.module or "").split(".")[0]}
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith(
                ("resources.files", "import_module")
            ):
                tops = {a.value.split(".")[0] for a in node.args if isinstance(a, ast.Constant)}
            else:
                continue
            if tops & generic:
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert wrong == []
