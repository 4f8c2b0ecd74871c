"""The NGSI-LD query language (`q`, ETSI GS CIM 009 §4.9) parsed into a predicate over entities.

Supported: ``attr==v``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``~=`` / ``!~=`` (regex), a bare
``attr`` (exists) and ``!attr`` (absent); ``;`` = and (binds tighter), ``|`` = or, parentheses;
values: "strings", numbers, true/false, unquoted date-times, ranges ``a..b``, lists ``a,b``;
paths ``attr.subAttr`` and ``attr[key.key]``; the system attributes createdAt/modifiedAt.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import re2

Predicate = Callable[[dict[str, Any]], bool]
_OPERATORS = ("==", "!=", ">=", "<=", "!~=", "~=", ">", "<")
_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_:@-]*")
_MISSING = object()
MAX_PATTERN = 256  # regular expressions come from callers: keep them short
MAX_Q = 4096
MAX_NESTING = 32  # parentheses inside each other in q
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}|$)")
_BARE_VALUE = re.compile(r"[^;|()\",=<>!~\[\]]+")


class QueryError(ValueError):
    """A `q` the parser cannot read; the message names the position."""


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a caller's bad pattern is a 400, not a line on stderr
    options.max_mem = 8 << 20
    return options


_RE2_OPTIONS = _re2_options()


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A caller's regular expression as a search predicate, run by RE2: time linear in the
    text, so no pattern can stall the server (no backreferences or lookaround)."""
    if len(pattern) > MAX_PATTERN:
        raise QueryError(f"a pattern is at most {MAX_PATTERN} characters")
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except (re2.error, TypeError, ValueError, UnicodeEncodeError) as exc:
        raise QueryError(f"bad pattern {pattern[:60]!r}: {_text(exc)}") from None

    def search(text: str) -> bool:
        try:
            return compiled.search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate stored before values were checked
            return compiled.search(text.encode("utf-8", "replace").decode()) is not None

    return search


def _text(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


@dataclass(frozen=True, slots=True)
class Range:
    low: Any
    high: Any


def parse_q(text: str) -> Predicate:
    if len(text) > MAX_Q:
        raise QueryError(f"q is longer than {MAX_Q} characters")
    parser = _Parser(text)
    predicate = parser.expression()
    if parser.pos != len(text):
        raise QueryError(f"unexpected {text[parser.pos]!r} at position {parser.pos} of q")
    return predicate


class _Parser:
    def __init__(self, text: str):
        self.text, self.pos, self.depth = text, 0, 0

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        if not self.peek(token):
            raise QueryError(f"expected {token!r} at position {self.pos} of q")
        self.pos += len(token)

    def expression(self) -> Predicate:
        terms = [self.conjunction()]
        while self.peek("|"):
            self.pos += 1
            terms.append(self.conjunction())
        return terms[0] if len(terms) == 1 else (lambda e: any(t(e) for t in terms))

    def conjunction(self) -> Predicate:
        terms = [self.term()]
        while self.peek(";"):
            self.pos += 1
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else (lambda e: all(t(e) for t in terms))

    def term(self) -> Predicate:
        if self.peek("("):
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise QueryError(f"q nests parentheses deeper than {MAX_NESTING} (position {self.pos})")
            inner = self.expression()
            self.expect(")")
            self.depth -= 1
            return inner
        negate = self.peek("!") and not self.peek("!=")
        if negate:
            self.pos += 1
        path = self.path()
        operator = next((op for op in _OPERATORS if self.peek(op)), None)
        if operator is None:
            return (lambda e: _resolve(e, path) is _MISSING) if negate else (lambda e: _resolve(e, path) is not _MISSING)
        if negate:
            raise QueryError(f"'!' can only negate a bare attribute (position {self.pos})")
        self.pos += len(operator)
        value = self.value()
        if operator in ("~=", "!~="):
            if not isinstance(value, str) or len(value) > MAX_PATTERN:
                raise QueryError(f"{operator} needs a quoted pattern of at most {MAX_PATTERN} characters (position {self.pos})")
            search = compile_pattern(value)
            matches = _compare_all(path, lambda v: isinstance(v, str) and search(v))
            return matches if operator == "~=" else (lambda e: not matches(e))
        return _comparison(path, operator, value)

    def path(self) -> tuple[list[str], list[str]]:
        names = [self.name()]
        while self.peek("."):
            self.pos += 1
            names.append(self.name())
        keys: list[str] = []
        if self.peek("["):
            self.pos += 1
            keys.append(self.name())
            while self.peek("."):
                self.pos += 1
                keys.append(self.name())
            self.expect("]")
        return names, keys

    def name(self) -> str:
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise QueryError(f"expected an attribute name at position {self.pos} of q")
        self.pos = match.end()
        return match.group()

    def value(self) -> Any:
        first = self.scalar()
        if self.peek(".."):
            self.pos += 2
            return Range(first, self.scalar())
        if self.peek(","):
            items = [first]
            while self.peek(","):
                self.pos += 1
                items.append(self.scalar())
            return items
        return first

    def scalar(self) -> Any:
        if self.peek('"'):
            end = self.pos + 1
            while end < len(self.text) and self.text[end] != '"':
                end += 2 if self.text[end] == "\\" else 1
            if end >= len(self.text):
                raise QueryError(f"unterminated string at position {self.pos} of q")
            raw = self.text[self.pos + 1:end]
            self.pos = end + 1
            return raw.replace('\\"', '"').replace("\\\\", "\\")
        match = _BARE_VALUE.match(self.text, self.pos)
        if not match:
            raise QueryError(f"expected a value at position {self.pos} of q")
        raw = match.group()
        if ".." in raw:  # a range: the second half is read by value()
            raw = raw[: raw.index("..")]
        self.pos += len(raw)
        if raw in ("true", "false"):
            return raw == "true"
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            return float(raw)
        except ValueError:
            return raw  # an unquoted date-time or word, compared as text


def _attribute_value(attribute: Any) -> Any:
    if not isinstance(attribute, dict):
        return attribute  # metadata such as observedAt, or a system attribute
    if attribute.get("type") == "Relationship":
        return attribute.get("object", _MISSING)
    return attribute.get("value", _MISSING)


def _resolve(entity: dict[str, Any], path: tuple[list[str], list[str]]) -> Any:
    names, keys = path
    node: Any = entity
    for name in names:  # attribute, then sub-attributes / metadata such as observedAt
        if not isinstance(node, dict) or name not in node:
            return _MISSING
        node = node[name]
    value = _attribute_value(node)
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _compare_all(path: tuple[list[str], list[str]], test: Callable[[Any], bool]) -> Predicate:
    def predicate(entity: dict[str, Any]) -> bool:
        value = _resolve(entity, path)
        if value is _MISSING:
            return False
        values = value if isinstance(value, list) else [value]
        return any(test(v) for v in values)

    return predicate


def _as_time(value: Any) -> Any:
    """ISO 8601 date-times compare as instants ("…00Z" equals "…00.000000Z"); other values as they are."""
    if isinstance(value, str) and _DATE_TIME.match(value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return value


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, numbers) and isinstance(b, numbers)) or (type(a) is type(b) and isinstance(a, (str, datetime)))


def _equals(data: Any, wanted: Any) -> bool:
    if isinstance(wanted, Range):
        low, high, data = _as_time(wanted.low), _as_time(wanted.high), _as_time(data)
        return _comparable(data, low) and _comparable(data, high) and low <= data <= high
    if isinstance(wanted, list):
        return any(_equals(data, w) for w in wanted)
    data, wanted = _as_time(data), _as_time(wanted)
    return _comparable(data, wanted) and data == wanted


_ORDER = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


def _comparison(path: tuple[list[str], list[str]], operator: str, wanted: Any) -> Predicate:
    if operator == "==":
        return _compare_all(path, lambda v: _equals(v, wanted))
    if operator == "!=":
        equal = _compare_all(path, lambda v: _equals(v, wanted))
        present = _compare_all(path, lambda v: True)
        return lambda e: present(e) and not equal(e)
    if isinstance(wanted, (Range, list)):
        raise QueryError(f"{operator} needs a single value, not a range or list")
    order, wanted = _ORDER[operator], _as_time(wanted)
    return _compare_all(path, lambda v: _comparable(_as_time(v), wanted) and order(_as_time(v), wanted))
