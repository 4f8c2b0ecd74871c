"""Hostile JSON in, safe JSON out: bounded nesting, finite numbers, integers within range,
text without lone surrogates or control characters; and answers that never fail on a value
stored before these checks existed.

``loads`` is what every cityos body goes through (``core.read_json``); ``JSONResponse``
renders stored data and repairs what strict JSON cannot carry instead of answering 500.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi.responses import JSONResponse as _StrictJSONResponse

MAX_DEPTH = 32  # arrays/objects inside each other; a GeoJSON MultiPolygon needs 4
MAX_SAFE_INTEGER = 2**53 - 1  # what every JSON client reads exactly (RFC 8259 §6, JavaScript)
_MAX_NUMBER_CHARS = 40
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")
# C0 controls except tab, LF, CR; DEL; lone UTF-16 surrogates (cannot be encoded as UTF-8).
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class JSONValueError(ValueError):
    """A body that is JSON but holds a value cityos refuses; the message says what and where."""


def nesting_depth(raw: bytes) -> int:
    """How deeply arrays/objects nest in a JSON text, counted without parsing it."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads(raw: bytes) -> Any:
    """Parse a request body; JSONValueError for deep nesting or a value cityos does not store,
    ``json.JSONDecodeError``/``UnicodeDecodeError`` for text that is not JSON."""
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting_depth(raw) > MAX_DEPTH:
        raise JSONValueError(f"JSON nests deeper than {MAX_DEPTH} levels")
    value = json.loads(raw, parse_constant=_constant, parse_int=_integer, parse_float=_float)
    check_value(value, "$")
    return value


def _constant(name: str) -> Any:
    raise JSONValueError(f"{name} is not a JSON number (use a finite number or null)")


def _integer(text: str) -> int:
    if len(text) > _MAX_NUMBER_CHARS or abs(number := int(text)) > MAX_SAFE_INTEGER:
        raise JSONValueError(f"integer {text[:24]}{'…' if len(text) > 24 else ''} is outside ±{MAX_SAFE_INTEGER} (2^53 - 1)")
    return number


def _float(text: str) -> float:
    number = float(text[:_MAX_NUMBER_CHARS * 8])
    if not math.isfinite(number):
        raise JSONValueError(f"number {text[:24]} is too large to store")
    return number


def check_value(value: Any, where: str) -> None:
    """Refuse text with lone surrogates or control characters anywhere in a parsed value."""
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"{where} key")
            check_value(item, f"{where}.{key[:40]}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise JSONValueError(f"{where}: {value} is not a finite number")


def _check_text(text: str, where: str) -> None:
    bad = _BAD_TEXT.search(text)
    if bad:
        what = "a lone surrogate" if "\ud800" <= bad.group() <= "\udfff" else "a control character"
        raise JSONValueError(f"{where}: text holds {what} (U+{ord(bad.group()):04X}) at position {bad.start()}")


def repaired(value: Any) -> Any:
    """A copy that strict JSON can carry: non-finite numbers become null, bad characters U+FFFD."""
    if isinstance(value, str):
        return _BAD_TEXT.sub("\ufffd", value)
    if isinstance(value, dict):
        return {repaired(k): repaired(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repaired(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JSONResponse(_StrictJSONResponse):
    """Starlette's JSONResponse that repairs a value stored before validation (NaN, a lone
    surrogate) rather than failing the whole answer; the fast path is unchanged."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (ValueError, UnicodeEncodeError):
            return super().render(repaired(content))
