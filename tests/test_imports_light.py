"""Commands that write no map do not load the map stack (folium, branca, jinja2: about 1 s).

Each check runs in a fresh interpreter, since this test session has long imported folium.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from firegrid.pipeline import demo_config_path

MAP_STACK = ("folium", "branca", "jinja2")


def _loaded_after(code: str) -> list[str]:
    """The modules of the map stack loaded by a fresh interpreter running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import sys
        print("loaded:" + ",".join(m for m in {MAP_STACK!r} if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.splitlines()[-1]
    assert last.startswith("loaded:"), done.stdout[-2000:]
    return [m for m in last.removeprefix("loaded:").split(",") if m]


def test_the_logging_module_does_not_load_the_map_stack():
    assert _loaded_after("import firegrid.logs") == []


def test_access_help_does_not_load_the_map_stack():
    code = """
        from firegrid.cli import main
        try:
            main(["access", "--help"])
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """
    assert _loaded_after(code) == []


def test_redaction_still_applies_to_log_files(tmp_path: Path):
    # The redaction is imported when the first record is written, no longer with the module.
    import logging

    from firegrid.logs import LOGGER_NAME, logging_to

    log = tmp_path / "run.log"
    with logging_to(0, log_file=log):
        logging.getLogger(LOGGER_NAME).warning("call 13812345678 or a@b.cn")
    text = log.read_text(encoding="utf-8")
    assert "13812345678" not in text and "a@b.cn" not in text
    assert "call *** or ***" in text


def _demo_without_map(tmp_path: Path) -> Path:
    demo = tmp_path / "demo"
    shutil.copytree(demo_config_path().parent, demo)
    config = demo / "demo.toml"
    text = config.read_text(encoding="utf-8")
    assert "[output]" not in text
    config.write_text(text + "\n[output]\nmap = false\nexcel = false\n", encoding="utf-8")
    return config


def _access_code(config: Path, out: Path) -> str:
    return f"""
        from firegrid.cli import main
        try:
            main(["access", {str(config)!r}, "--out", {str(out)!r}, "-q"])
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """


def test_access_path_loads_no_map_stack_beside_the_maps_package_init(tmp_path: Path):
    # The firegrid.maps package as a bare namespace, whatever its __init__ imports: every
    # module the access command imports (config, reports, privacy, logs …) is then checked.
    import firegrid

    bare = f"""
        import sys, types
        bare = types.ModuleType("firegrid.maps")
        bare.__path__ = [{str(Path(firegrid.maps.__file__).parent)!r}]
        sys.modules["firegrid.maps"] = bare
        """
    config = _demo_without_map(tmp_path)
    assert _loaded_after(bare + _access_code(config, tmp_path / "out")) == []
    assert (tmp_path / "out" / "results.gpkg").is_file()
    assert not (tmp_path / "out" / "map.html").exists()


def test_access_without_a_map_does_not_load_the_map_stack(tmp_path: Path):
    config = _demo_without_map(tmp_path)
    assert _loaded_after(_access_code(config, tmp_path / "out")) == []


def test_the_maps_exports_stay_the_functions_once_every_submodule_is_imported():
    # Importing a submodule sets the package attribute of its name to the module: an export
    # named like a submodule would then be that module (what sank the first lazy exports).
    code = """
        import importlib, pkgutil
        import firegrid.maps as maps

        submodules = [info.name for info in pkgutil.iter_modules(maps.__path__)]
        assert "district_map" in submodules and not set(submodules) & set(maps.__all__)
        for name in submodules:
            importlib.import_module("firegrid.maps." + name)
        from firegrid.maps import MapOptions, risk_map, save_html, show, to_html
        from firegrid.maps.district_map import risk_map as drawn
        from firegrid.maps.export import save_html as saved, show as shown, to_html as html
        from firegrid.maps.options import MapOptions as options

        expected = (options, drawn, saved, shown, html)
        assert (MapOptions, risk_map, save_html, show, to_html) == expected
        assert [getattr(maps, n) for n in maps.__all__] == list(expected), maps.__all__
        assert set(maps.__all__) <= set(dir(maps))
        assert callable(risk_map) and risk_map.__module__ == "firegrid.maps.district_map"
        """
    assert _loaded_after(code) == list(MAP_STACK)


def test_the_maps_options_load_no_map_stack():
    assert _loaded_after("import firegrid.maps.options, firegrid.maps.privacy") == []
