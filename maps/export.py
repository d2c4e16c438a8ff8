"""Self-contained HTML export: every script, style and image inlined, so the map works offline.

Folium loads Leaflet and its plugins from CDNs. An exported FireGrid map instead carries the
vendored copies in ``maps/assets/`` (see ``VENDORED.md`` there) inline; only the optional basemap
tiles still need a network, and the map stays legible without them.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
import threading
from functools import cache
from html import escape as html_escape
from importlib import resources
from pathlib import Path

import folium

from firegrid.maps.html import script_json
from firegrid.spatial.errors import FireGridError

ASSET_PREFIX = "firegrid-asset:"

# What each folium element class needs, as vendored files. Folium's Map also lists jQuery,
# Bootstrap and Font-Awesome markers; FireGrid maps use none of them (icons are inline SVG,
# popups are GeoJSON popups), so they are left out rather than shipped.
VENDORED_JS: dict[str, list[tuple[str, str]]] = {
    "Map": [("leaflet", "leaflet.js")],
    "MarkerCluster": [("markerclusterjs", "leaflet.markercluster.js")],
}
VENDORED_CSS: dict[str, list[tuple[str, str]]] = {
    "Map": [("leaflet_css", "leaflet.css")],
    "MarkerCluster": [
        ("markerclustercss", "MarkerCluster.css"),
        ("markerclusterdefaultcss", "MarkerCluster.Default.css"),
    ],
}

_SCRIPT_SRC = re.compile(r'<script\s+src="([^"]+)"\s*>\s*</script>', re.IGNORECASE)
_CSS_LINK = re.compile(r'<link\s+rel="stylesheet"\s+href="([^"]+)"\s*/?>', re.IGNORECASE)
_EXTERNAL = re.compile(
    r"<script[^>]*\ssrc\s*=|<link[^>]*\shref\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE
)
_SOURCE_MAP = re.compile(r"^\s*//# sourceMappingURL=\S+\s*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((['\"]?)images/([\w.-]+\.png)\1\)")


class ExportError(FireGridError):
    """The map cannot be made self-contained (an element needs an asset that is not vendored)."""


@cache
def asset_text(name: str) -> str:
    """A vendored asset as text (JS or CSS), prepared for inlining."""
    text = resources.files("firegrid.maps").joinpath("assets", name).read_text(encoding="utf-8")
    text = _SOURCE_MAP.sub("", text)
    if name.endswith(".css"):
        text = _CSS_URL.sub(lambda m: f'url("{asset_data_uri(m.group(2))}")', text)
    return text


@cache
def asset_data_uri(name: str) -> str:
    """A vendored image as a ``data:`` URI."""
    raw = resources.files("firegrid.maps").joinpath("assets", name).read_bytes()
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def _elements(element):
    yield element
    for child in list(element._children.values()):
        yield from _elements(child)


def make_offline(m: folium.Map) -> folium.Map:
    """Point every element's scripts and styles at vendored assets (in place; returns ``m``).

    Raises
    ------
    ExportError
        When an element loads something from a CDN that FireGrid does not vendor.
    """
    for el in _elements(m):
        cls = type(el).__name__
        if isinstance(el, folium.Icon | folium.Popup):
            # Font-Awesome markers and folium.Popup (built with jQuery) need unvendored assets.
            raise ExportError(
                f"cannot export the map offline: {cls} needs a library FireGrid does not "
                "vendor; use folium.DivIcon for icons and GeoJsonPopup for popups"
            )
        js = getattr(el, "default_js", None)
        css = getattr(el, "default_css", None)
        if not js and not css:
            continue
        if cls not in VENDORED_JS and any(
            not str(url).startswith(ASSET_PREFIX) for _, url in (js or []) + (css or [])
        ):
            urls = [u for _, u in (js or []) + (css or [])]
            raise ExportError(
                f"cannot export the map offline: the folium element {cls} loads {urls[0]} "
                "from the internet and FireGrid does not vendor it"
            )
        if cls in VENDORED_JS:
            el.default_js = [(k, ASSET_PREFIX + f) for k, f in VENDORED_JS[cls]]
            el.default_css = [(k, ASSET_PREFIX + f) for k, f in VENDORED_CSS[cls]]
    return m


def _inline_script(match: re.Match) -> str:
    url = match.group(1)
    if not url.startswith(ASSET_PREFIX):
        raise ExportError(f"cannot export the map offline: it loads the script {url}")
    code = asset_text(url[len(ASSET_PREFIX) :])
    # A literal "</script" inside would end the element early; split it (never the case in
    # the vendored builds, but cheap to guarantee).
    code = code.replace("</script", "<\\/script")
    return f"<script>/* {url[len(ASSET_PREFIX) :]} (vendored) */\n{code}\n</script>"


def _inline_css(match: re.Match) -> str:
    url = match.group(1)
    if not url.startswith(ASSET_PREFIX):
        raise ExportError(f"cannot export the map offline: it loads the stylesheet {url}")
    css = asset_text(url[len(ASSET_PREFIX) :]).replace("</style", "<\\/style")
    return f"<style>/* {url[len(ASSET_PREFIX) :]} (vendored) */\n{css}\n</style>"


def external_references(html: str) -> list[str]:
    """Scripts and stylesheets an HTML page still loads from elsewhere (empty when offline)."""
    return [m.group(0) for m in _EXTERNAL.finditer(html)]


_RENDER_LOCK = threading.Lock()


def _render(m: folium.Map) -> str:
    """Render with the data in scripts serialised by :func:`firegrid.maps.html.script_json`."""
    # Jinja keeps one environment for all of folium's templates; its tojson policy is set for
    # this render only, so folium maps rendered elsewhere are unaffected, and the lock keeps
    # two runs rendering in two threads from restoring each other's policy mid-render.
    with _RENDER_LOCK:
        policies = folium.GeoJson._template.environment.policies
        saved = {k: policies.get(k) for k in ("json.dumps_function", "json.dumps_kwargs")}
        policies["json.dumps_function"] = script_json
        policies["json.dumps_kwargs"] = {}
        try:
            return m.get_root().render()
        finally:
            policies.update(saved)


def to_html(m: folium.Map) -> str:
    """Render ``m`` as one self-contained HTML page (scripts, styles, images inline).

    Raises
    ------
    ExportError
        When something would still be loaded from the network.
    """
    make_offline(m)
    html = _render(m)
    html = _SCRIPT_SRC.sub(_inline_script, html)
    html = _CSS_LINK.sub(_inline_css, html)
    left = external_references(html)
    if left:
        raise ExportError(f"cannot export the map offline: it still loads {left[0]}")
    return html


def save_html(m: folium.Map, path: str | os.PathLike) -> Path:
    """Write the self-contained map to ``path`` (UTF-8) atomically; returns the path."""
    path = Path(path)
    html = to_html(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".map-", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600); a map is shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OfflineMapView:
    """A map shown inline in Jupyter from its self-contained HTML (works with no network)."""

    def __init__(self, m: folium.Map, *, height: int = 600) -> None:
        self.html = to_html(m)
        self.height = int(height)

    def _repr_html_(self) -> str:
        doc = html_escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{doc}" style="width:100%;height:{self.height}px;border:none" '
            "allowfullscreen></iframe>"
        )


def show(m: folium.Map, *, height: int = 600) -> OfflineMapView:
    """Display ``m`` inline in a notebook with the vendored assets (no CDN).

    Folium's own notebook display loads Leaflet from CDNs, which fails on an intranet.
    """
    return OfflineMapView(m, height=height)
