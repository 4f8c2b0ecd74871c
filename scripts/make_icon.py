"""Make assets/icon.png (1024×1024, the icon `flet build` uses) and favicon.png: 守 on a shield."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
SIZE = 1024


def main() -> None:
    image = Image.new("RGBA", (SIZE, SIZE), "#0B5FA5")
    draw = ImageDraw.Draw(image)
    # A shield: flat top, curved sides meeting in a point.
    shield = [(212, 200), (812, 200), (812, 520), (512, 860), (212, 520)]
    draw.polygon(shield, fill="#FFFFFF")
    font = ImageFont.truetype(str(ROOT / "assets" / "fonts" / "NotoSansJP-Mamori.ttf"), 420)
    draw.text((512, 470), "守", font=font, fill="#0B5FA5", anchor="mm")
    image.save(ROOT / "assets" / "icon.png")
    image.resize((64, 64), Image.LANCZOS).save(ROOT / "assets" / "favicon.png")  # the web client's tab icon


if __name__ == "__main__":
    main()
