"""How user text reaches the HTML of a map: as data, never as template source.

Folium builds a page with Jinja, and branca compiles text as a template in two places: a plain
:class:`branca.element.Element` compiles the string it is given, and every
:class:`branca.element.MacroElement` wraps its *rendered* output in such an Element, so the
output is compiled once more. A building named ``{{ 7*7 }}`` would then read ``49``, and
``{{ lipsum.__globals__.os.getcwd() }}`` would run Python. This module is the one way around
that; every layer, tooltip, popup, legend, title and layer name of :mod:`maps` goes through it:

- :class:`Literal` is an element whose text is written as it is, never compiled (titles, the
  legend, the style sheet).
- :class:`GeoJson`, :class:`GeoJsonTooltip`, :class:`GeoJsonPopup`, :class:`FeatureGroup`,
  :class:`MarkerCluster` and :class:`LayerControl` are folium's classes with their rendered
  output written verbatim (:class:`VerbatimMacro`): the data, field names, aliases and layer
  names they embed as JSON are never compiled again.
- :func:`escape_html` escapes text for HTML (Leaflet shows tooltips, popups and layer names
  as HTML), with template and script metacharacters as character references, so escaped text
  is inert in an HTML text node, an attribute, a JavaScript string or a template literal.
- :func:`page_text` replaces what no page can hold (unpaired surrogates) in a layer's text.
- :func:`script_json` serialises the data embedded in scripts (folium's ``tojson``), as UTF-8
  text with the line separators and unpaired surrogates escaped.
"""

from __future__ import annotations

import html
import json
import re

import folium
import folium.plugins
import pandas as pd
from branca.element import Element, MacroElement

# Characters escape_html writes as numeric character references beyond html.escape's
# & < > " ': the brackets of template syntax (Jinja ``{{ {% {#``, JavaScript ``${``), the
# template-literal quote and escape, and the line separators JavaScript once refused in strings.
_REFERENCES = str.maketrans(
    {c: f"&#{ord(c)};" for c in "{}`$\\\u2028\u2029"}
    # NUL has no place in an HTML page (parsers drop or replace it): the replacement character,
    # as for unpaired surrogates, which UTF-8 cannot encode.
    | {0: "\ufffd"}
)
_SURROGATES = re.compile("[\ud800-\udfff]")
_SCRIPT_UNSAFE = re.compile("[\u2028\u2029\ud800-\udfff]")


def escape_html(value: object) -> str:
    """``value`` as text for HTML: shown literally, never markup, script or template.

    ``& < > " '`` become entities, ``{ } ` $ \\`` and U+2028/U+2029 numeric character
    references; NUL (which HTML parsers drop) and unpaired surrogates (which UTF-8 cannot
    encode) become U+FFFD. Otherwise ``html.unescape`` recovers the text exactly.

    Parameters
    ----------
    value : object
        Any value; converted with ``str``.

    Returns
    -------
    str
    """
    text = _SURROGATES.sub("\ufffd", str(value))
    return html.escape(text, quote=True).translate(_REFERENCES)


def script_json(obj: object, **kwargs) -> str:
    """JSON of ``obj`` for embedding in a ``<script>`` (folium's ``tojson``).

    Compact UTF-8 (Chinese stays characters, not 6-byte ``\\u`` escapes), with U+2028/U+2029
    and unpaired surrogates as ``\\u`` escapes: the first end a string in older JavaScript
    engines, the second cannot be encoded as UTF-8. Jinja's ``tojson`` then escapes
    ``< > & '``, so embedded data cannot close the script element. ``kwargs`` (Jinja's dumps
    policy) are ignored: the format is fixed.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return _SCRIPT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def page_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with unpaired surrogates in text cells and headers replaced by U+FFFD.

    No UTF-8 page can hold an unpaired surrogate, and Arrow-backed string columns refuse one,
    so a layer cleans its frame with this before any text is converted or escaped. Only
    object columns can hold one (Arrow strings are valid UTF-8 by construction).

    Parameters
    ----------
    df : DataFrame or GeoDataFrame

    Returns
    -------
    The same type; ``df`` itself when there is nothing to replace.
    """

    def clean(value):
        return _SURROGATES.sub("\ufffd", value) if isinstance(value, str) else value

    out = df
    for col in [c for c in df.columns if pd.api.types.is_object_dtype(df[c].dtype)]:
        cleaned = df[col].map(clean)
        if not cleaned.equals(df[col]):
            out = out.copy() if out is df else out
            out[col] = cleaned
    names = {c: clean(c) for c in df.columns if clean(c) != c}
    return out.rename(columns=names) if names else out


class Literal(Element):
    """An element whose text is written into the page as it is (never compiled as a template).

    Parameters
    ----------
    text : str
        HTML (or script) to write; any user text in it must already be :func:`escape_html`-ed.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Literal"
        self.text = str(text)

    def render(self, **kwargs) -> str:
        return self.text


class VerbatimMacro(MacroElement):
    """Writes the rendered ``header``/``html``/``script`` macros verbatim.

    :meth:`branca.element.MacroElement.render` wraps each rendered macro in an ``Element``,
    which compiles it as a template: text inside the rendered data would be evaluated. Mixed in
    after a folium class (``class GeoJson(folium.GeoJson, VerbatimMacro)``), this class takes
    MacroElement's place in the method order, so the folium class's own ``render`` runs first
    and its output is then written as :class:`Literal` elements.
    """

    def render(self, **kwargs) -> None:
        figure = self.get_root()
        macros = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = macros.get(part)
            if macro is not None:
                getattr(figure, part).add_child(Literal(macro(self, kwargs)), name=self.get_name())
        for element in self._children.values():
            element.render(**kwargs)


# Folium's classes that carry user text (data, field names, aliases, layer names), with
# verbatim output. Style values given as folium objects (resolved by folium through the
# second compilation) are not supported; FireGrid styles are plain colours and numbers.
class GeoJson(folium.GeoJson, VerbatimMacro):
    """:class:`folium.GeoJson` whose embedded data is never compiled as a template.

    Features without ids are drawn with one style (FireGrid splits a layer into one GeoJson
    per style): folium would otherwise pick a property as the style key (``properties.0`` is
    no JavaScript) or write an id into every feature.
    """

    def find_identifier(self) -> str:
        features = self.data["features"]
        if features and all("id" not in f for f in features):
            return "feature.type"  # "Feature" for all: the one style is the default
        return super().find_identifier()


class GeoJsonTooltip(folium.GeoJsonTooltip, VerbatimMacro):
    """:class:`folium.GeoJsonTooltip` whose fields and aliases are never compiled."""


class GeoJsonPopup(folium.GeoJsonPopup, VerbatimMacro):
    """:class:`folium.GeoJsonPopup` whose fields and aliases are never compiled."""


class FeatureGroup(folium.FeatureGroup, VerbatimMacro):
    """:class:`folium.FeatureGroup` with verbatim output."""


class MarkerCluster(folium.plugins.MarkerCluster, VerbatimMacro):
    """:class:`folium.plugins.MarkerCluster` with verbatim output."""


class LayerControl(folium.LayerControl, VerbatimMacro):
    """:class:`folium.LayerControl` whose layer names are never compiled."""


__all__ = [
    "FeatureGroup",
    "GeoJson",
    "GeoJsonPopup",
    "GeoJsonTooltip",
    "LayerControl",
    "Literal",
    "MarkerCluster",
    "VerbatimMacro",
    "escape_html",
    "page_text",
    "script_json",
]
