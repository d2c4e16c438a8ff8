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


def _package_dirs(pyproject: Path) -> dict[str, str]:
    with pyproject.open("rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["package-dir"]


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
        for name, folder in _package_dirs(pyproject).items()
        if name.replace(".", "/") != folder.rstrip("/")
    ]


def _modules_to_mutate(pyproject: Path) -> list[str]:
    with pyproject.open("rb") as f:
        patterns = tomllib.load(f)["tool"]["mutmut"]["only_mutate"]
    files = sorted({p for pattern in patterns for p in Path().glob(pattern)})
    return [".".join(p.with_suffix("").parts) for p in files]


def check(root: Path) -> list[str]:
    """Modules to mutate that do not import from the copy at ``root``.

    Parameters
    ----------
    root : Path
        The scratch copy (current directory), first on ``sys.path`` as mutmut puts
        ``mutants/``.

    Returns
    -------
    list of str
        One line per module listed in ``[tool.mutmut] only_mutate`` that imports from
        elsewhere (for instance the checkout, through the editable install) or matches no
        file; empty when every one resolves below ``root``.
    """
    sys.path.insert(0, str(root))
    names = _modules_to_mutate(root / "pyproject.toml")
    if not names:
        return ["[tool.mutmut] only_mutate matches no file in the copy"]
    wrong = []
    for name in names:
        origin = Path(importlib.import_module(name).__file__).resolve()
        if not origin.is_relative_to(root):
            wrong.append(f"{name} imports from {origin}, not from {root}")
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
