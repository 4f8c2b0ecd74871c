"""Survey answers kept on the phone until the outbox has delivered them."""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import sqlite_utils

from offline import checkin_store
from protocol.checkin import SurveyResponse, validate_answers


class SurveyAnswers:
    """Answers kept locally until the outbox has delivered them."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def submit(self, shelter_id: str, answers: Mapping[str, object], language: str = "ja",
               idempotency_key: str | None = None) -> str:
        clean = validate_answers(answers)
        key = idempotency_key or uuid.uuid4().hex
        checkin_store.insert_survey(self._db, key, shelter_id, language, json.dumps(clean, ensure_ascii=False))
        return key

    def pending(self, limit: int = 500) -> list[SurveyResponse]:
        return [SurveyResponse(k, s, lang, json.loads(a), at)
                for k, s, lang, a, at in checkin_store.pending_surveys(self._db, limit)]

    def mark_synced(self, idempotency_keys: list[str]) -> int:
        return checkin_store.mark_synced(self._db, "checkin_survey", idempotency_keys)
