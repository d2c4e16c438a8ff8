"""The CJK font of printed outputs: where it is, and a TrueType subset to embed in each page.

Posters and inspection lists are drawn with matplotlib, whose fonts (DejaVu) have no Chinese
glyphs, and a fresh machine may have no system CJK font at all. FireGrid depends on the
PyPI package ``pylopdf-fonts-zh-cn``, which ships Noto Sans SC (SIL Open Font License 1.1);
a system font (Noto Sans CJK SC, Source Han Sans SC, WenQuanYi …) is used only when that
package is absent.

Noto Sans SC has PostScript (CFF) outlines. matplotlib's PDF backend embeds a font as
TrueType (``pdf.fonttype = 42``) and writes CFF data as if it were TrueType, which viewers
flag as a broken font. So each page gets a small TrueType font instead:
:func:`embed_font` takes the characters the page shows, subsets the font to them and converts
the outlines to quadratic TrueType curves (fontTools, ~1 s a page), and sets it on every text
of the figure. The PDF then carries one valid, searchable CID TrueType font per page, and
PNGs are drawn with the same glyphs. The subset is named ``FireGrid CJK`` (the OFL's
reserved-name rule for modified fonts); documents made with the font are not bound by the
licence.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from pathlib import Path

from firegrid.spatial.errors import ConfigError

# System fonts with Simplified Chinese glyphs, tried in this order when the font package is
# absent (family names as matplotlib's font manager lists them).
SYSTEM_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
)
FONT_PACKAGE = "pylopdf-fonts-zh-cn"
SUBSET_FAMILY = "FireGrid CJK"
# Characters every subset carries, whatever the page shows: digits, Latin letters and
# punctuation, so a text added after the subset was made still has its common glyphs.
BASE_CHARACTERS = "".join(chr(c) for c in range(0x20, 0x7F)) + "，。：；（）、—–·°²³％"
# Probe: a font is CJK when it has these glyphs (消防网格).
_PROBE = "消防网格"


@functools.cache
def cjk_font_path() -> Path:
    """The font file Chinese text is drawn with.

    Noto Sans SC of the ``pylopdf-fonts-zh-cn`` package, else the first system font of
    :data:`SYSTEM_FAMILIES` that holds Chinese glyphs.

    Raises
    ------
    ConfigError
        No CJK font is available, naming the package to install.
    """
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        pass
    else:
        path = Path(pylopdf_fonts_zh_cn.sans_path())
        if path.is_file():
            return path
    found = _system_font()
    if found is None:
        raise ConfigError(
            "no font with Chinese glyphs for posters and printed lists: install the "
            f"{FONT_PACKAGE} package (pip install {FONT_PACKAGE}; Noto Sans SC, SIL OFL) "
            "or a system CJK font such as Noto Sans CJK SC"
        )
    return Path(found)


def _system_font() -> str | None:
    from matplotlib import font_manager

    by_family = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in SYSTEM_FAMILIES:
        path = by_family.get(family)
        if path and _has_glyphs(path, _PROBE):
            return path
    return None


def _has_glyphs(path: str, text: str) -> bool:
    from fontTools.ttLib import TTFont

    try:
        cmap = TTFont(path, fontNumber=0, lazy=True).getBestCmap() or {}
    except Exception:  # an unreadable system font is simply not a candidate
        return False
    return all(ord(ch) in cmap for ch in text)


@functools.cache
def _font_bytes(path: str) -> bytes:
    # Read once per process: each page's subset starts from the same 8 MB file.
    return Path(path).read_bytes()


def truetype_subset(text: str, folder: str | os.PathLike, *, source: str | None = None) -> Path:
    """Write a TrueType font holding the glyphs of ``text`` (and :data:`BASE_CHARACTERS`).

    Parameters
    ----------
    text : str
        The characters to keep; characters the font lacks are left out (drawn as a box).
    folder : path
        Where to write the font file (named by a hash of its characters).
    source : str, optional
        The font to subset (default :func:`cjk_font_path`); CFF outlines are converted to
        quadratic TrueType curves (tolerance 1 font unit).

    Returns
    -------
    Path of the ``.ttf`` file, family name :data:`SUBSET_FAMILY`.
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont

    source = str(source or cjk_font_path())
    chars = "".join(sorted(set(text) | set(BASE_CHARACTERS)))
    digest = hashlib.sha256(f"{source}\n{chars}".encode("utf-8", "surrogatepass")).hexdigest()
    path = Path(folder) / f"firegrid-cjk-{digest[:16]}.ttf"
    if path.is_file():
        return path
    font = TTFont(io.BytesIO(_font_bytes(source)), fontNumber=0)
    options = subset.Options()
    options.layout_features = []  # matplotlib shapes no text: no GSUB closure to carry
    options.notdef_outline = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)
    if "CFF " in font:
        _cff_to_glyf(font)
    _rename(font, SUBSET_FAMILY)
    font.save(str(path))
    return path


def _cff_to_glyf(font) -> None:
    """Replace a font's CFF outlines by TrueType ``glyf`` outlines, in place."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        # PostScript outlines run counter-clockwise, TrueType's clockwise.
        glyphs[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for key in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, key, 0)
    maxp.maxZones = 1
    font["maxp"] = maxp
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font["head"].glyphDataFormat = 0
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    font.sfntVersion = "\x00\x01\x00\x00"


def _rename(font, family: str) -> None:
    """Give the subset its own family name (OFL: a modified font drops the reserved name)."""
    postscript = family.replace(" ", "")
    names = {1: family, 2: "Regular", 3: f"{postscript}-Regular", 4: family, 6: postscript}
    table = font["name"]
    for record in list(table.names):
        if record.nameID in names:
            table.removeNames(nameID=record.nameID)
    for name_id, value in names.items():
        table.setName(value, name_id, 3, 1, 0x409)
        table.setName(value, name_id, 1, 0, 0)


def embed_font(figure, folder: str | os.PathLike) -> Path:
    """Draw every text of a matplotlib ``figure`` with a TrueType subset of the CJK font.

    Call just before saving: the subset holds exactly the characters the figure shows then.
    ``folder`` keeps the font file until the figure is saved (a temporary folder).

    Returns
    -------
    Path of the font file used.
    """
    texts = figure_texts(figure)
    path = truetype_subset("".join(t.get_text() for t in texts), folder)
    use_font(figure, path)
    return path


def figure_texts(figure) -> list:
    """Every text artist of a figure, the cells of its tables included (a table cell's text
    is no child artist, so ``findobj`` alone misses it)."""
    from matplotlib.table import Table
    from matplotlib.text import Text

    cells = [c.get_text() for t in figure.findobj(Table) for c in t.get_celld().values()]
    return [*figure.findobj(Text), *cells]


def use_font(figure, path: str | os.PathLike) -> None:
    """Draw every text of ``figure`` with the font file ``path`` (sizes kept).

    For a document of many pages whose text is known beforehand: one
    :func:`truetype_subset` of all of it, used on every page.
    """
    from matplotlib.font_manager import FontProperties

    for t in figure_texts(figure):
        t.set_fontproperties(FontProperties(fname=str(path), size=t.get_fontsize()))


def rc_params() -> dict[str, object]:
    """matplotlib settings of every printed output: TrueType fonts in PDFs (searchable,
    printable), user text never read as mathtext or TeX (a ``$`` stays a dollar sign)."""
    return {
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "text.usetex": False,
        "text.parse_math": False,
        "axes.unicode_minus": False,
        "svg.fonttype": "none",
    }


__all__ = [
    "BASE_CHARACTERS",
    "FONT_PACKAGE",
    "SUBSET_FAMILY",
    "SYSTEM_FAMILIES",
    "cjk_font_path",
    "embed_font",
    "figure_texts",
    "rc_params",
    "truetype_subset",
    "use_font",
]
