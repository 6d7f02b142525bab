"""A small boolean keyword query language, compiled once and matched in one pass per text.

Syntax (operators are upper-case words; everything else is a term)::

    nato OR otan                    either term
    defence AND spending            both terms (AND may be left out: ``defence spending``)
    drone NOT football              the first term and not the second
    (eu OR nato) "drone wall"       parentheses group; double quotes make a phrase
    defen*                          prefix wildcard: defence, defense, defended ...
    =EU  ="E.U."  =SAFE             a leading ``=`` makes a term or phrase case-sensitive
    nato NEAR/10 (eu OR ue)         both sides within 10 words of each other (either order)
    title:nato  body:(drone*)       field scopes: ``title:``, ``lead:`` (the first words of the
                                    body, see :meth:`Matcher.scan`) and ``body:``

Precedence, from tightest: ``NOT`` and field scopes, ``NEAR/N``, ``AND`` (explicit or implicit),
``OR``. The sides of ``NEAR`` may be terms, phrases or parenthesised groups, but not ``NOT``.

Matching rules:

* Text is split into words: runs of letters and digits (any script). Hyphens, apostrophes and
  dots separate words, so ``anti-drone`` in a query is the phrase ``"anti drone"`` and ``=E.U.``
  matches "E.U." and "E U".
* Terms match whole words only: ``eu`` never matches inside "Europe" or "neutral", ``nato``
  never inside "senator" or "Renato". ``defen*`` matches words that *start* with "defen".
* Plain terms ignore case and accents (``européenne`` = ``europeenne``); ``=`` terms compare
  the exact characters.

Every distinct term of every query given to one :class:`Matcher` goes into one Aho-Corasick
automaton over the case-folded words (case-sensitive terms are checked against the original
words where the folded form hits), so a text is scanned once whatever the number of terms and
queries; queries are then evaluated on the word positions found. A syntax error raises
:class:`newsmon.core.errors.ConfigError` naming the position and what was expected.

The words, terms, syntax tree and parser live in :mod:`newsmon.extractors.query_syntax`; this
module scans texts and evaluates queries on them, and re-exports the public names of both.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, count
from operator import add
from typing import Any

import ahocorasick

from newsmon.extractors.query_syntax import (
    _FOLD,
    _SEPARATE,
    AndNode,
    FieldNode,
    NearNode,
    Node,
    NotNode,
    OrNode,
    Term,
    TermNode,
    fold,
    folded_words_of,
    parse_query,
    positive_terms_of,
    terms_of,
    words_of,
)

# --------------------------------------------------------------------------- matching

Region = tuple[int, int]  # word indexes [start, end)


@dataclass
class ScanResult:
    """All term occurrences in one text, by term, as word indexes and character offsets.

    ``title_words`` and ``lead_words`` delimit the fields: words ``[0, title_words)`` are the
    title, the next ``lead_words`` the lead, and everything after the title the body.
    """

    words: dict[Term, list[int]] = field(default_factory=dict)
    folded: list[str] = field(default_factory=list)  # every word, case- and accent-folded
    n_words: int = 0
    title_words: int = 0
    lead_words: int = 0
    separated: str = field(default="", repr=False)  # the text with non-word characters as spaces
    _starts: list[int] | None = field(default=None, init=False, repr=False)

    def char_offset(self, word: int) -> int:
        """Offset in the text of the first character of word number ``word``."""
        if self._starts is None:  # all in C: piece k of split(" ") starts at len(pieces < k) + k
            pieces = self.separated.split(" ")
            offsets = map(add, accumulate(map(len, pieces), initial=0), count())
            self._starts = list(compress(offsets, pieces))
        return self._starts[word]

    def surface(self, term: Term) -> str:
        """The words of the text where ``term`` first occurs, as written ("deterrence" for
        ``deterren*``); how explanations show prefix terms."""
        first = self.words[term][0]
        start = self.char_offset(first)
        words = self.separated[start:].split(maxsplit=len(term.words))[: len(term.words)]
        return " ".join(words)

    @property
    def positions(self) -> dict[Term, list[int]]:
        """Character offsets of every occurrence, by term."""
        return {t: [self.char_offset(i) for i in found] for t, found in self.words.items()}

    @property
    def present(self) -> frozenset[Term]:
        return frozenset(self.words)

    def region(self, name: str | None = None) -> Region:
        """Word range of a field (``title``, ``lead``, ``body``, ``rest``) or the whole text."""
        lead_end = min(self.n_words, self.title_words + self.lead_words)
        if name is None:
            return (0, self.n_words)
        if name == "title":
            return (0, self.title_words)
        if name == "lead":
            return (self.title_words, lead_end)
        if name == "body":
            return (self.title_words, self.n_words)
        if name == "rest":  # the body after the lead
            return (lead_end, self.n_words)
        raise ValueError(f"unknown field {name!r}")

    def count(self, term: Term, region: Region | None = None) -> int:
        """How many times ``term`` occurs (optionally only inside a word range)."""
        found = self.words.get(term, [])
        return len(found) if region is None else count_in(found, region)


def _in(found: list[int], region: Region) -> list[int]:
    lo, hi = region
    return found[bisect_left(found, lo) : bisect_left(found, hi)]


def count_in(found: Sequence[int], region: Region) -> int:
    """How many of the ascending word indexes ``found`` fall inside ``region``."""
    lo, hi = region
    return bisect_left(found, hi) - bisect_left(found, lo)


def match_positions(node: Node, scan: ScanResult, region: Region | None = None) -> list[int] | None:
    """Word indexes of the occurrences that make ``node`` hold, or None when it does not hold.

    A NOT that holds contributes no positions; ``NEAR`` keeps only the occurrences that have a
    partner within the distance.
    """
    reg = region if region is not None else scan.region()
    if isinstance(node, TermNode):
        found = _in(scan.words.get(node.term, []), reg)
        return found or None
    if isinstance(node, NotNode):
        return None if match_positions(node.child, scan, reg) is not None else []
    if isinstance(node, FieldNode):
        lo, hi = scan.region(node.field)
        inner = (max(lo, reg[0]), min(hi, reg[1]))
        return match_positions(node.child, scan, inner if inner[0] < inner[1] else (0, 0))
    if isinstance(node, NearNode):
        left = match_positions(node.left, scan, reg)
        right = match_positions(node.right, scan, reg) if left else None
        if not left or not right:
            return None
        keep = sorted(
            {p for p in left if _within(p, right, node.distance)}
            | {p for p in right if _within(p, left, node.distance)}
        )
        return keep or None
    if isinstance(node, OrNode):
        hits: set[int] = set()
        holds = False
        present = scan.words
        # iterate over the smaller side: a query may list thousands of terms, a text has few
        if len(node.terms) < len(present):
            candidates: Iterable[Term] = (t for t in node.terms if t in present)
        else:
            candidates = (t for t in present if t in node.terms)
        for t in candidates:
            found = _in(present[t], reg)
            if found:
                holds = True
                hits.update(found)
        for child in node.others:
            r = match_positions(child, scan, reg)
            if r is not None:
                holds = True
                hits.update(r)
        return sorted(hits) if holds else None
    results = [match_positions(c, scan, reg) for c in node.children]
    if any(r is None for r in results):
        return None
    return sorted({p for r in results if r for p in r})


def _within(p: int, others: list[int], distance: int) -> bool:
    i = bisect_left(others, p - distance)
    return i < len(others) and others[i] <= p + distance


def evaluate(node: Node, scan: ScanResult, region: Region | None = None) -> bool:
    """Whether the query holds on a scanned text (optionally inside a word range only)."""
    return match_positions(node, scan, region) is not None


def _canonical_node(node: Node, canon: Mapping[Term, Term]) -> Node:
    if isinstance(node, TermNode):
        return TermNode(canon.get(node.term, node.term))
    if isinstance(node, NotNode):
        return NotNode(_canonical_node(node.child, canon))
    if isinstance(node, FieldNode):
        return FieldNode(node.field, _canonical_node(node.child, canon))
    if isinstance(node, NearNode):
        return NearNode(
            _canonical_node(node.left, canon), _canonical_node(node.right, canon), node.distance
        )
    children = tuple(_canonical_node(c, canon) for c in node.children)
    return AndNode(children) if isinstance(node, AndNode) else OrNode(children)


def _build_automaton(terms: Iterable[Term]) -> Any:
    """One automaton over the folded text for all terms; case-sensitive terms are checked
    against the original words on a hit, so the text is scanned once, not once per case mode."""
    by_key: dict[str, tuple[list[Term], list[Term]]] = {}
    for t in terms:
        folded, exact = by_key.setdefault(t.folded_key, ([], []))
        (exact if t.case_sensitive else folded).append(t)
    automaton = ahocorasick.Automaton()
    for k, (folded, exact) in by_key.items():
        # spaces in " w0 w1 ... " up to a match's last character, minus this, is the index of
        # its first word: n words of a whole-word key end on the space after the last word
        t = (folded or exact)[0]
        adjust = len(t.words) + (0 if t.prefix else 1)
        automaton.add_word(k, (adjust, tuple(folded), tuple(exact)))
    if by_key:
        automaton.make_automaton()
    return automaton


def _exact_at(term: Term, words: list[str], i: int) -> bool:
    n = len(term.words)
    found = words[i : i + n]
    if term.prefix:
        return found[:-1] == list(term.words[:-1]) and found[-1].startswith(term.words[-1])
    return found == list(term.words)


class Matcher:
    """Named queries plus extra terms (e.g. entity aliases), compiled into one scanner.

    Picklable: the automata are rebuilt from the term list on unpickling.
    """

    def __init__(
        self,
        queries: Mapping[str, str] | None = None,
        extra_terms: Iterable[Term] = (),
        *,
        source: str = "<query>",
        key_prefix: str = "",
    ) -> None:
        self.queries: dict[str, Node] = {
            name: parse_query(q, source=source, key=f"{key_prefix}{name}")
            for name, q in (queries or {}).items()
        }
        self.sources: dict[str, str] = dict(queries or {})
        terms: list[Term] = []
        for node in self.queries.values():
            terms.extend(terms_of(node))
        terms.extend(extra_terms)
        self.terms: tuple[Term, ...] = tuple(sorted(set(terms)))
        self._compile()

    def canonical(self, term: Term) -> Term:
        """The matcher's own instance of ``term`` (dict lookups then succeed on identity)."""
        return self._canon.get(term, term)

    def _compile(self) -> None:
        self._canon = {t: t for t in self.terms}
        self.queries = {name: _canonical_node(n, self._canon) for name, n in self.queries.items()}
        # per query: its positive terms in order of appearance, one per key (so "défense" and
        # "defense" show once), as a rank map to list the found ones in query order
        self._positive: dict[str, dict[Term, int]] = {}
        for name, n in self.queries.items():
            by_key = {t.key: t for t in reversed(positive_terms_of(n))}
            ordered = list(by_key.values())[::-1]
            self._positive[name] = {t: i for i, t in enumerate(ordered)}
        self._automaton = _build_automaton(self.terms)
        self._empty = not self.terms

    def __getstate__(self) -> dict[str, Any]:
        return {"queries": self.queries, "sources": self.sources, "terms": self.terms}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.queries = state["queries"]
        self.sources = state["sources"]
        self.terms = state["terms"]
        self._compile()

    def scan(self, text: str, *, title_chars: int = 0, lead_words: int = 0) -> ScanResult:
        """Find every occurrence of every term, in one automaton pass per case mode.

        ``text[:title_chars]`` is the title (for ``title:`` scopes; end it at a word boundary);
        the ``lead_words`` words after it are the lead. Cost is linear in the text length,
        whatever the number of terms.
        """
        separated = text.translate(_SEPARATE)
        words = separated.split()
        result = ScanResult(
            n_words=len(words),
            title_words=len(separated[:title_chars].split()),
            lead_words=lead_words,
            separated=separated,
        )
        folded = text.translate(_FOLD).split()
        if len(folded) != len(words):  # a letter folded to a space or to nothing: go slowly
            folded = [fold(w) for w in words]
        result.folded = folded
        if self._empty:
            return result
        string = " " + " ".join(result.folded) + " "
        found = result.words
        # Matches come in order of their end offset. Spaces up to the end of a match tell which
        # word it ends in; the key's shape (stored with it) gives its first word.
        spaces, counted_to = 0, 0
        for end, (adjust, folded, exact) in self._automaton.iter(string):
            spaces += string.count(" ", counted_to, end + 1)
            counted_to = end + 1
            i = spaces - adjust
            for t in folded:
                found.setdefault(t, []).append(i)
            for t in exact:
                if _exact_at(t, words, i):
                    found.setdefault(t, []).append(i)
        for hits in found.values():
            hits.sort()
        return result

    def matches(self, name: str, scan: ScanResult) -> bool:
        """Whether query ``name`` holds for a scanned text."""
        return evaluate(self.queries[name], scan)

    def matched_terms(self, name: str, scan: ScanResult) -> list[Term]:
        """The positive terms of query ``name`` that occur in the scanned text (one per key)."""
        rank = self._positive[name]
        return sorted((t for t in scan.words if t in rank), key=rank.__getitem__)


def compile_query(query: str, *, source: str = "<query>") -> Matcher:
    """A :class:`Matcher` holding one query under the name ``"query"``."""
    return Matcher({"query": query}, source=source)


def query_matches(query: str, text: str) -> bool:
    """Convenience: compile ``query`` and test it on ``text`` (compile once for repeated use)."""
    m = compile_query(query)
    return m.matches("query", m.scan(text))


__all__ = [
    "AndNode",
    "FieldNode",
    "Matcher",
    "NearNode",
    "Node",
    "NotNode",
    "OrNode",
    "Region",
    "ScanResult",
    "Term",
    "TermNode",
    "compile_query",
    "count_in",
    "evaluate",
    "fold",
    "folded_words_of",
    "match_positions",
    "parse_query",
    "positive_terms_of",
    "query_matches",
    "terms_of",
    "words_of",
]
