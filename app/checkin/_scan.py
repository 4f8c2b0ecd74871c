"""Reading QR codes from a camera frame or an image file, with zbar (pyzbar), which phones get
from Flet's mobile index (flet-libzbar).

Whatever the input — PNG/JPEG bytes, a path, a PIL image or a numpy frame — the result is the
list of QR texts found, or ``NoQrFound``; damaged files never escape as PIL/zbar exceptions.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter, ImageOps

from protocol.checkin import NoQrFound

MAX_PIXELS = 25_000_000  # a 24 MP camera frame; anything bigger is refused before decoding
_MAX_SIDE = 1600  # frames are scaled down to this first: faster, and QR on a screen stays readable

ImageSource = bytes | str | Path | Image.Image | Any  # Any: a numpy array (grayscale or BGR)


def _open(source: ImageSource) -> Image.Image:
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
        try:
            return Image.fromarray(source)
        except (TypeError, ValueError):  # a dtype or shape PIL cannot show as an image
            raise NoQrFound("the image cannot be scanned (unsupported pixel format)") from None
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


# Tried in order until one reads: the frame, then copies that recover a shaky hand's blur, a dim
# screen or a QR too large for zbar's scan lines (each measured by ``python -m bench checkin``).
def _sharpened(img: Image.Image) -> Image.Image:
    return img.filter(ImageFilter.UnsharpMask(radius=2, percent=150, threshold=2))


def _strongly_sharpened(img: Image.Image) -> Image.Image:
    return img.filter(ImageFilter.UnsharpMask(radius=3, percent=250, threshold=0))


def _stretched(img: Image.Image) -> Image.Image:
    return _sharpened(ImageOps.autocontrast(img, cutoff=1))


def _smaller(img: Image.Image) -> Image.Image:
    return img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.Resampling.BILINEAR)


_RETRIES = (_sharpened, _strongly_sharpened, _stretched, _smaller)


def _decode(img: Image.Image) -> list[str]:
    try:
        from pyzbar import pyzbar  # loads libzbar; a missing library is a clear error, not a crash at start
    except ImportError:
        raise NoQrFound("QR reading needs the zbar library (apt-get install libzbar0)") from None
    found = pyzbar.decode(img, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [text for r in found if (text := r.data.decode("utf-8", "replace"))]


def read_qr_texts(source: ImageSource) -> list[str]:
    """All QR texts in the image, in zbar's order; ``NoQrFound`` if there is none."""
    img = _prepare(_open(source))
    try:
        texts = _decode(img)
        for variant in _RETRIES:
            if texts:
                break
            texts = _decode(variant(img))
    except NoQrFound:
        raise
    except Exception:  # zbar rejects odd buffers with its own errors
        raise NoQrFound("the image cannot be scanned (unsupported pixel format)") from None
    if not texts:
        raise NoQrFound("no QR code found in the image: hold the screen steady and closer")
    return texts
