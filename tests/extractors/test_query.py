"""The keyword query language: syntax, word boundaries, case, prefixes, errors."""

from __future__ import annotations

import pickle

import pytest

from newsmon.core.errors import ConfigError
from newsmon.extractors.query import (
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
        ("nato NEAR eu", 5, "expected NEAR/N with a distance in words"),
        ("nato NEAR/0 eu", 5, "expected NEAR/N with a distance in words"),
        ("nato NEAR/5 NOT eu", 5, "not NOT"),
        ("nato NEAR/5", 11, "expected a term"),
        ("title: nato", 6, "expected a term, phrase or '(' after 'title:'"),
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


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("nato NEAR/3 eu", "NATO and the EU", True),
        ("nato NEAR/3 eu", "the EU and NATO", True),  # either order
        ("nato NEAR/3 eu", "NATO met on Monday and later the EU", False),
        ("nato NEAR/3 eu", "NATO said things. Much later, much later, the EU and NATO", True),
        ('nato NEAR/3 ("drone wall" OR sabotage)', "NATO fears a drone wall", True),
        ('nato NEAR/3 ("drone wall" OR sabotage)', "NATO fears drones; a wall", False),
        ("(nato NEAR/2 summit) NEAR/5 madrid", "the NATO summit opened in Madrid", True),
        ("nato NEAR/2 summit AND madrid", "Madrid. The NATO summit", True),
        ("=EU NEAR/4 (membership OR accession)", "Georgia seeks EU membership", True),
    ],
)
def test_near(query: str, text: str, expected: bool) -> None:
    assert query_matches(query, text) is expected


def test_field_scopes() -> None:
    m = compile_query("title:nato AND body:(defen* OR troops) AND NOT lead:football")
    title = "NATO moves"
    for body, expected in [
        ("Troops deploy to Poland.", True),
        ("Shops open. Defence ministers meet.", True),
        ("Football first. Troops later.", False),
        ("Nothing here.", False),
    ]:
        scan = m.scan(f"{title}\n{body}", title_chars=len(title), lead_words=3)
        assert m.matches("query", scan) is expected, body
    # the same words in the body do not satisfy title:
    scan = m.scan("Moves\nNATO troops", title_chars=5, lead_words=3)
    assert m.matches("query", scan) is False


def test_lead_scope_is_the_first_words_of_the_body() -> None:
    m = compile_query("lead:nato")
    text = "Title\none two NATO"
    assert m.matches("query", m.scan(text, title_chars=5, lead_words=3)) is True
    assert m.matches("query", m.scan(text, title_chars=5, lead_words=2)) is False


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
    assert scan.words[Term(("nato",))] == [0, 4]  # word indexes
    assert scan.count(Term(("nato",)), region=(2, 10)) == 1
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
