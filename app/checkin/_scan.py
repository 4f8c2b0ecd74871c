"""Reading QR codes from a camera frame or an image file, in Python (zxing-cpp).

Whatever the input — PNG/JPEG bytes, a path, a PIL image or a numpy frame — the result is the
list of QR texts found, or ``NoQrFound``; damaged files never escape as PIL/zxing exceptions.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image, ImageFilter

from protocol.checkin import NoQrFound

MAX_PIXELS = 25_000_000  # a 24 MP camera frame; anything bigger is refused before decoding
_MAX_SIDE = 1600  # frames are scaled down to this first: faster, and QR on a screen stays readable

ImageSource = bytes | str | Path | Image.Image | Any  # Any: a numpy array (grayscale or BGR)


def _open(source: ImageSource) -> Image.Image | Any:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, str, Path)):
        try:
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            if img.width * img.height > MAX_PIXELS:
                raise NoQrFound(f"image is too large ({img.width}x{img.height})")
            if img.format == "JPEG":
                img.draft("L", img.size)  # decode camera JPEGs straight to grayscale: twice as fast
            img.load()
            return img
        except NoQrFound:
            raise
        except Exception:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError...
            raise NoQrFound("the image file cannot be read (damaged or not an image)") from None
    if hasattr(source, "shape") and hasattr(source, "dtype"):
        return source
    raise NoQrFound(f"cannot read an image from {type(source).__name__}")


def _prepare(img: Image.Image) -> Image.Image:
    if img.width * img.height > MAX_PIXELS or img.width == 0 or img.height == 0:
        raise NoQrFound(f"image size {img.width}x{img.height} is not usable")
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB") if img.mode in ("RGBA", "P", "CMYK", "LA", "I;16") else img.convert("L")
    if max(img.size) > _MAX_SIDE:
        img = img.copy()
        img.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.Resampling.BILINEAR)
    return img.convert("L")


def _decode(img: Image.Image | Any) -> list[str]:
    results = zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    return [r.text for r in results if r.valid and r.text]


def read_qr_texts(source: ImageSource) -> list[str]:
    """All QR texts in the image, in zxing's order; ``NoQrFound`` if there is none."""
    img = _open(source)
    try:
        if isinstance(img, Image.Image):
            img = _prepare(img)
        texts = _decode(img)
        if not texts and isinstance(img, Image.Image):
            # Second try on a sharpened copy: recovers most frames blurred by a shaky hand.
            texts = _decode(img.filter(ImageFilter.UnsharpMask(radius=2, percent=150, threshold=2)))
    except NoQrFound:
        raise
    except Exception:  # zxing rejects odd buffers (wrong dtype/shape) with ValueError/TypeError
        raise NoQrFound("the image cannot be scanned (unsupported pixel format)") from None
    if not texts:
        raise NoQrFound("no QR code found in the image: hold the screen steady and closer")
    return texts
