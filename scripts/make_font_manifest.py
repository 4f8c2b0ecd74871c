"""Write assets/assets/FontManifest.json: the fonts the web client loads before its first
frame, Flet's own (icons, KaTeX) followed by Mamori's bundled fonts (views.theme.FONTS).

Why: a font given only through ``page.fonts`` arrives after the first frames. Text laid out
before it sends Flutter's web engine after its CJK fallback fonts (14 requests per page load),
which an offline server cannot give; each failed one makes the engine lay out every text again.
Listed here, the fonts are there from the first frame and nothing is fetched.

Flet serves this file in place of its own (it prefers the app's assets/FontManifest.json), so
it lists Flet's fonts too: run again after upgrading flet; tests/test_fonts.py fails until then.
Run: python scripts/make_font_manifest.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from views.theme import FONTS  # noqa: E402

TARGET = ROOT / "assets" / "assets" / "FontManifest.json"


def flet_manifest() -> list[dict]:
    import flet_web

    return json.loads((Path(flet_web.__file__).parent / "web" / "assets" / "FontManifest.json").read_text(encoding="utf-8"))


def manifest() -> list[dict]:
    # Asset paths are relative to the web client's assets/ folder; the app's fonts are served
    # from the root of its assets folder, one level up.
    return flet_manifest() + [{"family": family, "fonts": [{"asset": f"../{path}"}]} for family, path in FONTS.items()]


def main() -> int:
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(json.dumps(manifest(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
