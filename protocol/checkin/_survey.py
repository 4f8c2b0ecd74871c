"""Shelter-life survey (避難所生活アンケート): satisfaction, needs, biggest problem, stress.

Questions and options are message keys; their ja/en texts live in assets/i18n/checkin.*.json.
Answers are anonymous (no household reference); they are sent with the evacuee-card consent,
like self check-ins, and the platform sums them up per shelter for the desks.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from protocol.checkin._errors import InvalidSurveyAnswer

_MAX_TEXT = 500


class QuestionKind(str, Enum):
    SCALE = "scale"  # an integer from low to high
    SINGLE = "single"  # one option id
    MULTI = "multi"  # a list of option ids
    TEXT = "text"  # free text, optional


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    kind: QuestionKind
    options: tuple[str, ...] = ()
    low: int = 1
    high: int = 5
    required: bool = True

    @property
    def text_key(self) -> str:
        return f"checkin.survey.{self.id}.question"

    def option_key(self, option: str) -> str:
        return f"checkin.survey.{self.id}.{option}"

    @property
    def label_keys(self) -> tuple[str, ...]:
        """Every message key the question needs (the i18n test checks them all)."""
        if self.kind is QuestionKind.SCALE:
            return (self.text_key, self.option_key("low"), self.option_key("high"))
        return (self.text_key, *(self.option_key(o) for o in self.options))


_NEEDS = ("water", "food", "baby_supplies", "medicine", "toilet", "bedding", "privacy", "hygiene",
          "information", "phone_charging", "care_help", "other")
_PROBLEMS = ("sleep", "noise", "privacy", "toilet", "temperature", "food", "hygiene", "information",
             "health", "other")

SURVEY: tuple[Question, ...] = (
    Question("satisfaction", QuestionKind.SCALE),
    Question("needs", QuestionKind.MULTI, _NEEDS),
    Question("biggest_problem", QuestionKind.SINGLE, _PROBLEMS),
    Question("stress", QuestionKind.SCALE),
    Question("comment", QuestionKind.TEXT, required=False),
)


def _check(q: Question, value: object) -> object:
    if q.kind is QuestionKind.SCALE:
        if not isinstance(value, int) or isinstance(value, bool) or not q.low <= value <= q.high:
            raise InvalidSurveyAnswer(f"{q.id}: choose a number from {q.low} to {q.high}")
        return value
    if q.kind is QuestionKind.SINGLE:
        if value not in q.options:
            raise InvalidSurveyAnswer(f"{q.id}: choose one of the listed answers")
        return value
    if q.kind is QuestionKind.MULTI:
        if not isinstance(value, (list, tuple)) or not all(v in q.options for v in value):
            raise InvalidSurveyAnswer(f"{q.id}: choose from the listed answers")
        return sorted(set(value), key=q.options.index)
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise InvalidSurveyAnswer(f"{q.id}: text of at most {_MAX_TEXT} characters")
    return value.strip()


def validate_answers(answers: Mapping[str, object]) -> dict[str, object]:
    """Clean answers, or ``InvalidSurveyAnswer`` naming the question; unknown ids are refused."""
    by_id = {q.id: q for q in SURVEY}
    unknown = set(answers) - set(by_id)
    if unknown:
        raise InvalidSurveyAnswer(f"unknown question(s): {', '.join(sorted(map(str, unknown)))}")
    clean: dict[str, object] = {}
    for q in SURVEY:
        if q.id not in answers or answers[q.id] in (None, ""):
            if q.required:
                raise InvalidSurveyAnswer(f"{q.id}: an answer is required")
            continue
        clean[q.id] = _check(q, answers[q.id])
    return clean


@dataclass(frozen=True, slots=True)
class SurveyResponse:
    idempotency_key: str
    shelter_id: str
    language: str
    answers: dict[str, object]
    answered_at: str
