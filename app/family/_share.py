""""Share as text": one SMS/LINE-friendly line for when the network is down for long.

    安否: 無事 / 宇部市○○小学校 / 14:02

The lead hands the text to the platform share sheet; nothing here sends anything.
"""
from __future__ import annotations

from datetime import datetime

from app.family._model import Answer
from app.i18n import Translator
from protocol.entities import RESIDENT_TZ, utc


def share_text(answer: Answer, t: Translator, now: datetime | None = None) -> str:
    """The line to share. Time is Japan time; the date is added when it is not today."""
    local = answer.observed_at.astimezone(RESIDENT_TZ)
    today = utc(now).astimezone(RESIDENT_TZ).date()
    when = local.strftime("%H:%M") if local.date() == today else local.strftime("%m/%d %H:%M")
    parts = [f"{t('family.share.prefix')}: {t(answer.status.label_key)}"]
    if answer.place:
        parts.append(answer.place)
    elif answer.has_location:
        parts.append(f"{answer.lat:.5f},{answer.lon:.5f}")
    if answer.message:
        parts.append(answer.message)
    if answer.is_proxy:
        parts.append(t("family.share.proxy"))
    parts.append(when)
    return " / ".join(parts)
