"""Make assets/fonts/NotoSansJP-Mamori.ttf: Noto Sans CJK JP (SIL OFL 1.1) cut down to the
characters Japanese text uses (everything Shift_JIS/cp932 can encode: kana, JIS level 1–2
kanji, NEC/IBM extensions, ASCII, full-width forms).

Why bundle a font: offline, Flutter's web client cannot fetch its CJK fallback font and
draws Japanese as boxes; mobile builds need it bundled too.
Run (needs Debian's fonts-noto-cjk and fonttools):  python scripts/make_font.py
"""
from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
TARGET = Path(__file__).resolve().parent.parent / "assets" / "fonts" / "NotoSansJP-Mamori.ttf"


def japanese_codepoints() -> list[int]:
    points = set(range(0x20, 0x7F)) | {0x3000, 0x30FC, 0x2026, 0x2014, 0x00A9, 0x00B0, 0x00D7}
    for lead in list(range(0x81, 0xA0)) + list(range(0xE0, 0xFD)):
        for trail in list(range(0x40, 0x7F)) + list(range(0x80, 0xFD)):
            try:
                points.add(ord(bytes([lead, trail]).decode("cp932")))
            except UnicodeDecodeError:
                continue
    return sorted(points)


def to_truetype(font: TTFont) -> None:
    """Replace CID-keyed CFF outlines with TrueType quadratic ones.

    CanvasKit (Flutter web) dropped glyphs from the CID-keyed CFF subset now and then;
    glyf outlines render reliably everywhere.
    """
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in font.getGlyphOrder():
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font["loca"] = newTable("loca")
    glyf = font["glyf"] = newTable("glyf")
    glyf.glyphOrder = font.getGlyphOrder()
    glyf.glyphs = glyphs
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for field in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                  "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, field, 0)
    maxp.maxZones = 1
    font["post"].formatType = 2.0
    font["post"].extraNames = []
    font["post"].mapping = {}
    font["head"].glyphDataFormat = 0
    font.sfntVersion = "\x00\x01\x00\x00"


def main() -> int:
    if not SOURCE.exists():
        print(f"{SOURCE} missing: apt-get install fonts-noto-cjk", file=sys.stderr)
        return 1
    font = TTCollection(str(SOURCE)).fonts[0]  # face 0 is Noto Sans CJK JP
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=japanese_codepoints())
    subsetter.subset(font)
    to_truetype(font)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(TARGET))
    print(f"{TARGET}: {TARGET.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
