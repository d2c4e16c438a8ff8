"""The documentation site: it builds with warnings as errors, every page is in the nav, and
the generated pages (config reference, output columns) hold what the code defines."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import griffe
import pytest
import yaml

from firegrid.config import DISTRICT_KEYS, LAYER_KEYS, NETWORK_KEYS, PARAM_SECTIONS
from firegrid.spatial.columns import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hook():
    spec = importlib.util.spec_from_file_location(
        "firegrid_docs_hook", DOCS / "hooks" / "generated.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold mkdocs's own tags (!ENV, !relative): read them as plain values."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for v in nav.values() for p in _nav_pages(v)]
    return [p for item in nav for p in _nav_pages(item)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    log = built.stdout + built.stderr
    assert built.returncode == 0, log[-4000:]
    assert not re.search(r"^WARNING", log, re.M), log[-4000:]
    return out


def _text(page: Path) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Loader)
    listed = _nav_pages(config["nav"])
    present = {
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if "hooks" not in p.relative_to(DOCS).parts
    }
    assert sorted(set(listed) - present) == [], "nav entries without a page"
    assert sorted(present - set(listed)) == [], "pages missing from mkdocs.yml's nav"
    assert len(listed) == len(set(listed))


@pytest.mark.slow
def test_the_site_builds_with_warnings_as_errors(site):
    for page in ("index.html", "quickstart/index.html", "quickstart.zh/index.html",
                 "guides/planner/index.html", "guides/analyst/index.html",
                 "guides/leader/index.html"):  # fmt: skip
        assert (site / page).is_file(), page
    assert "快速上手" in _text(site / "quickstart.zh" / "index.html")


@pytest.mark.slow
def test_the_config_reference_lists_every_section_and_key(site):
    text = _text(site / "config" / "index.html")
    expected = [f"[{s}]" for s in ("district", "network", "layers.NAME")]
    expected += [f"[{s}]" for s in PARAM_SECTIONS]
    for section in expected:
        assert section in text, section
    for key in [*DISTRICT_KEYS, *NETWORK_KEYS, *LAYER_KEYS]:
        assert key in text, key
    for section, cls in PARAM_SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.init and f.metadata.get("config", True):
                assert f.name in text, f"[{section}] {f.name}"
    # A default as TOML writes it, and a description from a class docstring.
    assert "hydrant_radius_m" in text and "150.0" in text
    assert "[access.engine]" in text and "[risk.grading]" in text
    assert "<!-- firegrid:config -->" not in (site / "config" / "index.html").read_text("utf-8")


@pytest.mark.slow
def test_the_column_glossary_is_the_registry(site):
    text = _text(site / "columns" / "index.html")
    parts = {c.name: [p for p in re.split(r"\{[^}]*\}", c.name) if p] for c in COLUMNS.values()}
    missing = [name for name, found in parts.items() if not all(p in text for p in found)]
    assert missing == []
    for column in list(COLUMNS.values())[:20]:
        assert column.zh in text, column.name


def test_the_glossary_page_is_the_readmes_glossary():
    from firegrid.spatial.columns import GLOSSARY_END, GLOSSARY_START

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(GLOSSARY_START), readme.index(GLOSSARY_END) + len(GLOSSARY_END)
    assert _hook().columns_markdown() == readme[start:end]


@pytest.mark.slow
def test_the_api_reference_renders_the_docstrings(site):
    pages = {
        "application": ["firegrid.pipeline.run_pipeline", "firegrid.api.run"],
        "spatial-io": ["firegrid.spatial.io.crs"],
        "spatial-network": ["firegrid.spatial.network"],
        "risk": ["firegrid.risk.index"],
        "maps": ["firegrid.maps.export.save_html"],
    }
    for page, anchors in pages.items():
        html = (site / "reference" / page / "index.html").read_text(encoding="utf-8")
        for anchor in anchors:
            assert f'id="{anchor}' in html, (page, anchor)


def test_attribute_docs_agrees_with_griffes_numpy_parser():
    hook = _hook()
    checked = 0
    for cls in _param_classes():
        ours = hook.attribute_docs(cls)
        doc = griffe.Docstring(cls.__doc__ or "", parser="numpy")
        for section in griffe.parse_numpy(doc, warnings=False):
            if section.kind.value not in ("attributes", "parameters"):
                continue
            for item in section.value:
                if "," in item.name:  # "a, b : float": griffe keeps it as one name
                    continue
                theirs = " ".join(item.description.split())
                assert item.name in ours, (cls.__name__, item.name)
                assert ours[item.name].endswith(theirs) or theirs.startswith(ours[item.name]), (
                    cls.__name__,
                    item.name,
                )
                checked += 1
    assert checked > 50


def _param_classes() -> list[type]:
    found, todo = [], [cls() for cls in PARAM_SECTIONS.values()]
    while todo:
        params = todo.pop()
        found.append(type(params))
        todo += [getattr(params, f.name) for f in dataclasses.fields(params)
                 if dataclasses.is_dataclass(getattr(params, f.name))]  # fmt: skip
    return list(dict.fromkeys(found))


def test_a_grouped_entry_documents_each_name():
    hook = _hook()

    class Example:
        """Summary.

        Attributes
        ----------
        low_m, high_m : float
            Band edges, metres.
        mode : {"a", "b"}
            How.
        """

    docs = hook.attribute_docs(Example)
    assert docs == {"low_m": "Band edges, metres.", "high_m": "Band edges, metres.",
                    "mode": 'One of {"a", "b"}. How.'}  # fmt: skip


def test_every_key_of_the_configs_own_tables_has_a_meaning():
    meanings = _hook().KEY_MEANINGS
    for section, keys in (("district", DISTRICT_KEYS), ("network", NETWORK_KEYS),
                          ("layers.NAME", LAYER_KEYS)):  # fmt: skip
        assert set(meanings[section]) == set(keys), section
        assert all(meanings[section].values()), section
