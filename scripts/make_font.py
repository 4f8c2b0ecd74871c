"""Make assets/fonts/NotoSansJP-Mamori.otf: Noto Sans CJK JP (SIL OFL 1.1) cut down to the
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
from fontTools.ttLib import TTCollection

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
TARGET = Path(__file__).resolve().parent.parent / "assets" / "fonts" / "NotoSansJP-Mamori.otf"


def japanese_codepoints() -> list[int]:
    points = set(range(0x20, 0x7F)) | {0x3000, 0x30FC, 0x2026, 0x2014, 0x00A9, 0x00B0, 0x00D7}
    for lead in list(range(0x81, 0xA0)) + list(range(0xE0, 0xFD)):
        for trail in list(range(0x40, 0x7F)) + list(range(0x80, 0xFD)):
            try:
                points.add(ord(bytes([lead, trail]).decode("cp932")))
            except UnicodeDecodeError:
                continue
    return sorted(points)


def main() -> int:
    if not SOURCE.exists():
        print(f"{SOURCE} missing: apt-get install fonts-noto-cjk", file=sys.stderr)
        return 1
    font = TTCollection(str(SOURCE)).fonts[0]  # face 0 is Noto Sans CJK JP
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=japanese_codepoints())
    subsetter.subset(font)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(TARGET))
    print(f"{TARGET}: {TARGET.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
