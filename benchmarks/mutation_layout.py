"""Lay the scratch copy for mutation testing out as the package installs.

mutmut names a mutant after its file's path below ``mutants/`` and its trampoline only
activates the mutant inside the module whose ``__name__`` is that path in dotted form. The
repository keeps ``spatial/``, ``risk/`` and ``maps/`` beside ``firegrid/`` and installs them
as ``firegrid.spatial`` and so on (``[tool.setuptools] package-dir``), so in a copy of the tree
as it is, ``risk/index.py`` would be mutated as ``risk.index`` while the tests import
``firegrid.risk.index`` — through the editable install, from the checkout. In a copy laid out
as installed (``firegrid/risk/index.py``) the path is the import name: the tests import the
mutated files in ``mutants/`` by the ordinary path search, and the mutant names match.

Used by ``benchmarks/mutation.sh``::

    python mutation_layout.py transforms PYPROJECT   # tar --transform options, one a line
    python mutation_layout.py check                   # in the scratch copy, before mutmut runs
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path


def _setuptools(pyproject: Path) -> dict:
    with pyproject.open("rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]


def transforms(pyproject: Path) -> list[str]:
    """GNU tar options that move each mapped folder to its import path.

    Parameters
    ----------
    pyproject : Path
        The repository's pyproject.toml; its ``[tool.setuptools] package-dir`` is read.

    Returns
    -------
    list of str
        One ``--transform=s,^spatial/,firegrid/spatial/,`` per folder whose place in the
        repository differs from its import name; none for folders already in place.
    """
    return [
        f"--transform=s,^{folder}/,{name.replace('.', '/')}/,"
        for name, folder in _setuptools(pyproject)["package-dir"].items()
        if name.replace(".", "/") != folder.rstrip("/")
    ]


def _files_to_mutate(root: Path) -> dict[str, list[Path]]:
    with (root / "pyproject.toml").open("rb") as f:
        patterns = tomllib.load(f)["tool"]["mutmut"]["only_mutate"]
    return {pattern: sorted(root.glob(pattern)) for pattern in patterns}


def _misplaced(path: Path, root: Path, packages: set[str]) -> str | None:
    # mutmut names the mutant's module after the path and activates it only there.
    name = ".".join(path.relative_to(root).with_suffix("").parts)
    if name.rpartition(".")[0] not in packages:
        return f"{name} is not a module of [tool.setuptools] packages"
    origin = Path(importlib.import_module(name).__file__).resolve()
    if origin != path.resolve():
        return f"{name} imports from {origin}, not from {path}"
    return None


def check(root: Path) -> list[str]:
    """What would keep mutmut from testing the mutants of the copy at ``root``.

    Parameters
    ----------
    root : Path
        The scratch copy (current directory), put first on ``sys.path`` as mutmut puts
        ``mutants/``.

    Returns
    -------
    list of str
        One line per pattern of ``[tool.mutmut] only_mutate`` that matches no file in the
        copy; per file whose path is not an import name of the installed packages
        (``[tool.setuptools] packages``: the tests would import it under another name than
        the mutant's); per module that imports from elsewhere (for instance the checkout,
        through the editable install). Empty when every module to mutate is in place.
    """
    sys.path.insert(0, str(root))
    packages = set(_setuptools(root / "pyproject.toml")["packages"])
    files = _files_to_mutate(root)
    wrong = [f"only_mutate {p!r} matches no file" for p, found in files.items() if not found]
    for path in sorted({p for found in files.values() for p in found}):
        problem = _misplaced(path, root, packages)
        if problem:
            wrong.append(problem)
    return wrong


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "transforms":
        print("\n".join(transforms(Path(args[0]))))
        return 0
    wrong = check(Path.cwd().resolve())
    for line in wrong:
        print(f"mutation: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
