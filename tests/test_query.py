"""The keyword query language: syntax, word boundaries, case, prefixes, errors."""

from __future__ import annotations

import pickle

import pytest

from extractors.query import (
    AndNode,
    Matcher,
    NotNode,
    OrNode,
    Term,
    TermNode,
    compile_query,
    parse_query,
    query_matches,
)
from newsmon.errors import ConfigError


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("nato", "NATO summit in Vilnius", True),
        ("nato", "Nato jets ready", True),
        ("nato", "The senator from Ohio", False),
        ("nato", "Renato Sanches scored", False),
        ("nato", "a gubernatorial race", False),
        ("nato", "non-NATO ally", True),  # a word of its own; the topic config penalises it
        ("eu", "Europe and neutral states", False),
        ("=EU", "the EU said", True),
        ("=EU", "eu sou brasileiro", False),
        ('="E.U."', "E.U. leaders push back", True),
        ("defen*", "Defence spending", True),
        ("defen*", "the defenders", True),
        ("defen*", "undefended", False),
        ('"drone wall"', "plans for a Drone-Wall on the border", True),
        ('"drone wall"', "a wall against drones", False),
        ("anti-drone", "an anti drone laser", True),
        ("europaische", "Europäische Union", True),
        ("défense", "la defense européenne", True),
    ],
)
def test_term_matching(query: str, text: str, expected: bool) -> None:
    assert query_matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("nato AND defence", "NATO defence ministers", True),
        ("nato defence", "NATO ministers", False),  # implicit AND
        ("nato OR otan", "l'OTAN", True),
        ("defence NOT football", "football defence", False),
        ("defence NOT football", "defence budget", True),
        ("a OR b AND c", "a", True),  # AND binds tighter than OR
        ("(a OR b) AND c", "a", False),
        ("NOT NOT nato", "nato", True),
        ("NOT eu", "", True),
    ],
)
def test_operators(query: str, text: str, expected: bool) -> None:
    assert query_matches(query, text) is expected


def test_parse_tree() -> None:
    tree = parse_query('nato OR (=EU "drone wall") NOT defen*')
    nato = TermNode(Term(("nato",)))
    eu = TermNode(Term(("EU",), case_sensitive=True))
    wall = TermNode(Term(("drone", "wall")))
    defen = TermNode(Term(("defen",), prefix=True))
    assert tree == OrNode((nato, AndNode((AndNode((eu, wall)), NotNode(defen)))))


@pytest.mark.parametrize(
    ("query", "position", "expected"),
    [
        ("nato AND", 8, "expected a term"),
        ("(nato OR eu", 11, "expected ')' to close the '(' at position 0"),
        ("nato)", 4, "expected AND, OR or the end of the query, got ')'"),
        ('"drone wall', 0, "unterminated phrase"),
        ("de*", 0, "a prefix needs at least 3 letters"),
        ("de*f", 0, "'*' is only allowed at the end"),
        ("nato OR OR eu", 8, "got 'OR'"),
        ("= nato", 0, "expected a term or phrase after '='"),
        ("nato - eu", 5, "expected a term with letters or digits"),
    ],
)
def test_syntax_errors_name_position(query: str, position: int, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_query(query, source="topics.toml", key="topics.t.queries.q")
    err = info.value
    assert err.source == "topics.toml"
    assert err.key == "topics.t.queries.q"
    assert f"at position {position} " in err.problem
    assert expected in err.problem
    assert err.fix


def test_empty_query_is_an_error() -> None:
    with pytest.raises(ConfigError, match="the query is empty"):
        parse_query("   ")


def test_scan_positions_and_counts() -> None:
    m = Matcher({"a": "nato OR otan", "b": "=EU defen*"})
    text = "NATO and the EU; nato, OTAN. Defence!"
    scan = m.scan(text)
    assert scan.positions[Term(("nato",))] == [0, 17]
    assert scan.positions[Term(("otan",))] == [23]
    assert scan.positions[Term(("EU",), case_sensitive=True)] == [13]
    assert scan.positions[Term(("defen",), prefix=True)] == [29]
    assert scan.count(Term(("nato",)), after=10) == 1
    assert m.matches("a", scan) and m.matches("b", scan)
    assert [str(t) for t in m.matched_terms("a", scan)] == ["nato", "otan"]


def test_shared_terms_compile_once_and_pickle() -> None:
    m = Matcher({"a": "nato AND defence", "b": "nato OR eu"}, [Term(("nato",))])
    assert len(m.terms) == 3
    clone = pickle.loads(pickle.dumps(m))
    assert clone.matches("a", clone.scan("NATO defence")) is True
    assert clone.matches("a", clone.scan("senator defence")) is False


def test_compile_query_reuse() -> None:
    q = compile_query("rearm*")
    assert [q.matches("query", q.scan(t)) for t in ("ReArm Europe", "rear guard")] == [
        True,
        False,
    ]
