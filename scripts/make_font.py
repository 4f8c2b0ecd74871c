"""Make the bundled fonts (SIL OFL 1.1) from Debian's Noto packages:

- assets/fonts/NotoSansJP-Mamori.ttf: Noto Sans CJK JP cut down to what the app shows:
  everything Shift_JIS/cp932 can encode (kana, JIS level 1–2 kanji, NEC/IBM extensions, ASCII,
  full-width forms), every character of every assets/i18n file (Korean and Vietnamese language
  names included), every string in the region data files under ../shared/data (shelter names,
  addresses, street names) and common symbols (〜 ～ ① – …);
- assets/fonts/NotoSansDevanagari-Mamori.ttf: Noto Sans Devanagari (the Nepali language name),
  the fallback font of every text style.

Why bundle a font: offline, Flutter's web client cannot fetch its CJK fallback font and
draws Japanese as boxes; mobile builds need it bundled too.
Run (needs Debian's fonts-noto-cjk and fonts-noto-core, and fonttools):
    python scripts/make_font.py [--data-dir ../shared/data]
tests/test_fonts.py checks that the result covers the i18n files and the region data.
"""
from __future__ import annotations

import argparse
import json
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
TARGET = ROOT / "assets" / "fonts" / "NotoSansJP-Mamori.ttf"
DEVANAGARI_SOURCE = Path("/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf")
DEVANAGARI_TARGET = ROOT / "assets" / "fonts" / "NotoSansDevanagari-Mamori.ttf"
DEVANAGARI = range(0x0900, 0x0980)
# Symbols residents meet in hazard, shelter and form text beyond cp932.
COMMON_SYMBOLS = "〜～–—−‐―…・·×÷±°℃‰¥€£✓→←↑↓⇒⇔※〒〃々〆〇〈〉《》「」『』【】〔〕［］｛｝♪☆★○●◎◇◆□■△▲▽▼♀♂"
CIRCLED = [*range(0x2460, 0x2474), *range(0x2776, 0x2780)]  # ①–⑳, ❶–❿


def text_characters(texts: Iterable[str]) -> set[int]:
    return {ord(c) for text in texts for c in text if c.isprintable()}


def i18n_texts(folder: Path = ROOT / "assets" / "i18n") -> Iterator[str]:
    for path in sorted(folder.glob("*.json")):
        yield from json.loads(path.read_text(encoding="utf-8")).values()


def region_texts(data_dir: Path) -> Iterator[str]:
    """Every string in the region data: GeoJSON properties and the shapefiles' records."""
    for path in sorted(data_dir.glob("regions/*/*.geojson")):
        for feature in json.loads(path.read_text(encoding="utf-8")).get("features", []):
            yield from (v for v in (feature.get("properties") or {}).values() if isinstance(v, str))
    for path in sorted(data_dir.glob("regions/*/*.zip")):
        yield from _shapefile_texts(path)


def _shapefile_texts(path: Path) -> Iterator[str]:
    import io

    import shapefile  # pyshp, an app dependency

    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.lower().endswith(".dbf"):
                for encoding in ("utf-8", "cp932"):
                    try:
                        reader = shapefile.Reader(dbf=io.BytesIO(z.read(name)), encoding=encoding)
                        yield from [v for record in reader.iterRecords() for v in record if isinstance(v, str)]
                        break
                    except UnicodeDecodeError:
                        continue


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


def codepoints(data_dir: Path) -> set[int]:
    return (set(japanese_codepoints()) | text_characters(i18n_texts()) | text_characters(region_texts(data_dir))
            | text_characters([COMMON_SYMBOLS]) | set(CIRCLED))


# What shaping applies to horizontal Japanese and Latin text. Left out: 'locl' (Chinese and Korean
# glyph forms, half the font's glyphs; the app's languages are ja and en), vertical forms and the
# alternates a text must ask for (jp78, jp90, fwid, pwid…).
JAPANESE_FEATURES = ["ccmp", "calt", "liga", "kern"]


def cut(font: TTFont, unicodes: Iterable[int], features: list[str]) -> TTFont:
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = features
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(unicodes))
    subsetter.subset(font)
    return font


def main() -> int:
    parser = argparse.ArgumentParser(prog="python scripts/make_font.py")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    for source, package in ((SOURCE, "fonts-noto-cjk"), (DEVANAGARI_SOURCE, "fonts-noto-core")):
        if not source.exists():
            print(f"{source} missing: apt-get install {package}", file=sys.stderr)
            return 1
    wanted = codepoints(args.data_dir)
    font = TTCollection(str(SOURCE)).fonts[0]  # face 0 is Noto Sans CJK JP
    covered = set(font.getBestCmap())
    font = cut(font, wanted & covered, JAPANESE_FEATURES)
    to_truetype(font)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(TARGET))
    devanagari = cut(TTFont(str(DEVANAGARI_SOURCE)), [*DEVANAGARI, 0x20, 0x2D, 0x200C, 0x200D, 0x25CC],
                     ["*"])  # Devanagari needs its shaping features (matras, conjuncts)
    devanagari.save(str(DEVANAGARI_TARGET))
    left = sorted(chr(c) for c in wanted - covered if c not in DEVANAGARI)
    for path in (TARGET, DEVANAGARI_TARGET):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.2f} MB")
    if left:
        print(f"not in Noto Sans CJK (drawn by the fallback font, if at all): {''.join(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
