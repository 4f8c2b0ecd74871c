"""The NGSI-LD `q` language: semantics on sample entities, and no crash on any input."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityos.query import QueryError, parse_q

SHELTER = {
    "id": "urn:ngsi-ld:EvacuationShelter:1",
    "type": "EvacuationShelter",
    "status": {"type": "Property", "value": "open", "observedAt": "2024-05-01T09:00:00Z"},
    "occupancy": {"type": "Property", "value": 42},
    "hazardSuitability": {"type": "Property", "value": ["flood", "earthquake"]},
    "address": {"type": "Property", "value": {"city": "宇部市", "zip": "755-0001"}},
    "operator": {"type": "Relationship", "object": "urn:ngsi-ld:Organization:ube"},
    "accessible": {"type": "Property", "value": True},
    "modifiedAt": "2024-05-01T09:00:00.000000Z",
}


@pytest.mark.parametrize("q, expected", [
    ('status=="open"', True),
    ('status!="open"', False),
    ("occupancy>40;occupancy<=42", True),
    ("occupancy==40..50", True),
    ("occupancy==1,2,42", True),
    ('hazardSuitability=="flood"', True),  # a list matches when any element does
    ('hazardSuitability=="tsunami"', False),
    ('address[city]=="宇部市"', True),
    ('address[zip]~="^755"', True),
    ('operator=="urn:ngsi-ld:Organization:ube"', True),
    ("accessible==true", True),
    ('status.observedAt>"2024-01-01"', True),
    ('modifiedAt>="2024-05-01T09:00:00Z"', True),
    ("nonexistent", False),
    ("!nonexistent;occupancy", True),
    ('occupancy>100|(status=="open";accessible==true)', True),
    ('occupancy>100|status=="closed";accessible==true', False),  # ; binds tighter than |
    ('occupancy>"40"', False),  # number vs text never compares
    ('status!~="^cl"', True),
])
def test_semantics(q, expected):
    assert parse_q(q)(SHELTER) is expected


@pytest.mark.parametrize("q", ["", "status==", "(status==1", "status===1", "==1", 'status=="open', "a>1..2", 'a~="("', "!a==1"])
def test_malformed_queries_raise_query_error(q):
    with pytest.raises(QueryError):
        parse_q(q)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(q=st.text(alphabet='abc.[]()";|!=<>~,0123456789 -:T', max_size=30),
       entity=st.dictionaries(st.sampled_from(["a", "b", "c"]), json_values, max_size=3))
def test_any_text_parses_or_fails_cleanly_and_never_crashes_on_data(q, entity):
    try:
        predicate = parse_q(q)
    except QueryError:
        return
    assert predicate(entity) in (True, False)


def test_date_times_compare_as_instants():
    entity = {"modifiedAt": "2024-05-01T09:00:00.000000Z", "at": {"type": "Property", "value": "2024-05-01T18:00:00+09:00"}}
    assert parse_q('modifiedAt=="2024-05-01T09:00:00Z"')(entity)
    assert parse_q("at==2024-05-01T09:00:00Z")(entity)  # the same instant in JST
    assert parse_q('at<"2024-05-01T09:00:01Z";at>"2024-05-01T08:59:59Z"')(entity)
