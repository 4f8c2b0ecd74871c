"""Daily step counts from a CSV file exported by a health app.

Accepted (detected from the header row, UTF-8 with or without BOM, comma-separated):

* the simple documented format ``date,steps`` (also ``日付,歩数``): one row per day,
  ``2025-04-01,8200``;
* Google Fit "Daily activity metrics" (Takeout): columns ``Date`` and ``Step count``;
* Apple Health records exported to CSV (e.g. by "QS Access"-style exporters): columns ``type``,
  ``startDate``, ``value``; rows of ``HKQuantityTypeIdentifierStepCount`` are summed per day of
  ``startDate`` (its date as written, i.e. the phone's local date).

Any malformed row fails the whole file with the line number, so nothing is half-imported.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date

from protocol.points import CsvImportError

MAX_BYTES = 50 * 1024 * 1024
_APPLE_STEPS = "HKQuantityTypeIdentifierStepCount"


def parse_steps_csv(text: str) -> dict[date, int]:
    """Steps per day from the CSV text; raises ``CsvImportError`` naming the line."""
    if len(text) > MAX_BYTES:
        raise CsvImportError("the CSV file is too large (over 50 MB)")
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(rows, [])]
    lowered = [h.lower() for h in header]
    if "type" in lowered and "startdate" in lowered and "value" in lowered:
        return _read(rows, lowered.index("startdate"), lowered.index("value"), lowered.index("type"), total=True)
    if "date" in lowered and "step count" in lowered:
        return _read(rows, lowered.index("date"), lowered.index("step count"), None, total=False)
    if lowered[:2] in (["date", "steps"], ["日付", "歩数"]):
        return _read(rows, 0, 1, None, total=False)
    raise CsvImportError("line 1: unknown CSV format; expected the header 'date,steps' "
                         "(or a Google Fit / Apple Health daily export)")


def _read(rows: Iterator[list[str]], date_col: int, steps_col: int, type_col: int | None, *, total: bool) -> dict[date, int]:
    days: dict[date, int] = {}
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(date_col, steps_col, type_col or 0):
            raise CsvImportError(f"line {line}: too few columns")
        if type_col is not None and row[type_col].strip() != _APPLE_STEPS:
            continue
        day = _day(row[date_col].strip(), line)
        cell = row[steps_col].strip()
        if cell == "" and type_col is None:
            continue  # Google Fit leaves the cell empty on days without data
        steps = _steps(cell, line)
        days[day] = days.get(day, 0) + steps if total else max(days.get(day, 0), steps)
    if not days:
        raise CsvImportError("the CSV file holds no step counts")
    return days


def _day(text: str, line: int) -> date:
    try:
        return date.fromisoformat(text[:10].replace("/", "-"))
    except ValueError:
        raise CsvImportError(f"line {line}: {text[:30]!r} is not a date like 2025-04-01") from None


def _steps(text: str, line: int) -> int:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        raise CsvImportError(f"line {line}: {text[:30]!r} is not a step count") from None
    if not 0 <= value <= 1_000_000:
        raise CsvImportError(f"line {line}: {text[:30]!r} is not a step count 0..1000000")
    return round(value)  # some exporters write fractional samples
