"""A small boolean keyword query language, compiled once and matched in one pass per text.

Syntax (operators are upper-case words; everything else is a term)::

    nato OR otan                    either term
    defence AND spending            both terms (AND may be left out: ``defence spending``)
    drone NOT football              the first term and not the second
    (eu OR nato) "drone wall"       parentheses group; double quotes make a phrase
    defen*                          prefix wildcard: defence, defense, defended ...
    =EU  ="E.U."  =SAFE             a leading ``=`` makes a term or phrase case-sensitive

Precedence, from tightest: ``NOT``, ``AND`` (explicit or implicit), ``OR``.

Matching rules:

* Text is split into words: runs of letters and digits (any script). Hyphens, apostrophes and
  dots separate words, so ``anti-drone`` in a query is the phrase ``"anti drone"`` and ``=E.U.``
  matches "E.U." and "E U".
* Terms match whole words only: ``eu`` never matches inside "Europe" or "neutral", ``nato``
  never inside "senator" or "Renato". ``defen*`` matches words that *start* with "defen".
* Plain terms ignore case and accents (``européenne`` = ``europeenne``); ``=`` terms compare
  the exact characters.

Every distinct term of every query given to one :class:`Matcher` goes into one pair of
Aho-Corasick automata (case-folded and exact), so a text is scanned once whatever the number
of queries. A syntax error raises :class:`newsmon.errors.ConfigError` naming the position and
what was expected.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from newsmon.errors import ConfigError

_WORD_RE = re.compile(r"[^\W_]+")
_OPERATORS = frozenset({"AND", "OR", "NOT"})
_MIN_PREFIX = 3


def fold(word: str) -> str:
    """Case- and accent-fold one word (``Europäische`` -> ``europaische``)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(text: str) -> list[str]:
    """Split ``text`` into the words the matcher sees."""
    return _WORD_RE.findall(text)


# --------------------------------------------------------------------------- terms and AST


@dataclass(frozen=True, order=True)
class Term:
    """One searchable unit: a word or a phrase, maybe a prefix, maybe case-sensitive."""

    words: tuple[str, ...]
    prefix: bool = False
    case_sensitive: bool = False

    @property
    def key(self) -> str:
        """The automaton key: words between spaces; a prefix leaves the end open."""
        words = self.words if self.case_sensitive else tuple(fold(w) for w in self.words)
        return " " + " ".join(words) + ("" if self.prefix else " ")

    def __str__(self) -> str:
        body = " ".join(self.words) + ("*" if self.prefix else "")
        if len(self.words) > 1:
            body = f'"{body}"'
        return ("=" if self.case_sensitive else "") + body

    @classmethod
    def from_text(cls, text: str) -> Term:
        """A term from free text (an alias): ``=`` prefix for case, trailing ``*`` for prefix."""
        case_sensitive = text.startswith("=")
        body = text[1:] if case_sensitive else text
        prefix = body.endswith("*")
        words = tuple(words_of(body[:-1] if prefix else body))
        return cls(words, prefix, case_sensitive)


@dataclass(frozen=True)
class TermNode:
    term: Term


@dataclass(frozen=True)
class NotNode:
    child: Node


@dataclass(frozen=True)
class AndNode:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class OrNode:
    children: tuple[Node, ...]


Node = TermNode | NotNode | AndNode | OrNode


def terms_of(node: Node) -> list[Term]:
    """Every term in the tree, in order of appearance (with repeats removed)."""
    out: list[Term] = []

    def walk(n: Node) -> None:
        if isinstance(n, TermNode):
            if n.term not in out:
                out.append(n.term)
        elif isinstance(n, NotNode):
            walk(n.child)
        else:
            for child in n.children:
                walk(child)

    walk(node)
    return out


def positive_terms_of(node: Node) -> list[Term]:
    """The terms that count *for* a match (those not under a NOT)."""
    out: list[Term] = []

    def walk(n: Node) -> None:
        if isinstance(n, TermNode):
            if n.term not in out:
                out.append(n.term)
        elif isinstance(n, AndNode | OrNode):
            for child in n.children:
                walk(child)

    walk(node)
    return out


def evaluate(node: Node, present: frozenset[Term] | set[Term]) -> bool:
    """Whether the query holds given the set of terms found in a text."""
    if isinstance(node, TermNode):
        return node.term in present
    if isinstance(node, NotNode):
        return not evaluate(node.child, present)
    if isinstance(node, AndNode):
        return all(evaluate(c, present) for c in node.children)
    return any(evaluate(c, present) for c in node.children)


# --------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class _Token:
    kind: str  # "(" ")" "AND" "OR" "NOT" "TERM" "END"
    pos: int
    text: str
    term: Term | None = None


def _fail(source: str, key: str, query: str, pos: int, problem: str) -> ConfigError:
    return ConfigError(
        source,
        key,
        f"query syntax error at position {pos} in {query!r}: {problem}",
        'write terms, "quoted phrases", prefix* and =CaseSensitive joined by AND, OR, NOT '
        "and parentheses, e.g. (nato OR otan) AND defen*",
    )


def _tokenize(query: str, source: str, key: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
            continue
        if c in "()":
            tokens.append(_Token(c, i, c))
            i += 1
            continue
        start = i
        case_sensitive = False
        if c == "=":
            case_sensitive = True
            i += 1
            if i >= n or query[i].isspace() or query[i] in "()":
                raise _fail(source, key, query, start, "expected a term or phrase after '='")
        if i < n and query[i] == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise _fail(source, key, query, i, "unterminated phrase: expected a closing '\"'")
            body = query[i + 1 : end]
            i = end + 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in '()"':
                j += 1
            body = query[i:j]
            i = j
            if not case_sensitive and body in _OPERATORS:
                tokens.append(_Token(body, start, body))
                continue
        tokens.append(
            _Token(
                "TERM",
                start,
                query[start:i],
                _make_term(body, case_sensitive, query, start, source, key),
            )
        )
    tokens.append(_Token("END", n, "end of query"))
    return tokens


def _make_term(
    body: str, case_sensitive: bool, query: str, pos: int, source: str, key: str
) -> Term:
    prefix = body.endswith("*")
    core = body[:-1] if prefix else body
    if "*" in core:
        raise _fail(source, key, query, pos, f"'*' is only allowed at the end of a term: {body!r}")
    words = tuple(words_of(core))
    if not words:
        raise _fail(
            source, key, query, pos, f"expected a term with letters or digits, got {body!r}"
        )
    if prefix and len(words[-1]) < _MIN_PREFIX:
        raise _fail(
            source,
            key,
            query,
            pos,
            f"a prefix needs at least {_MIN_PREFIX} letters before '*', got {body!r}",
        )
    return Term(words, prefix, case_sensitive)


class _Parser:
    def __init__(self, query: str, source: str, key: str) -> None:
        self.query, self.source, self.key = query, source, key
        self.tokens = _tokenize(query, source, key)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, tok: _Token, expected: str) -> ConfigError:
        got = "end of query" if tok.kind == "END" else repr(tok.text)
        return _fail(self.source, self.key, self.query, tok.pos, f"expected {expected}, got {got}")

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "END":
            raise self.error(tok, "AND, OR or the end of the query")
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek().kind == "OR":
            self.take()
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else OrNode(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.take()
            elif kind not in ("TERM", "(", "NOT"):
                break
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else AndNode(tuple(children))

    def parse_unary(self) -> Node:
        if self.peek().kind == "NOT":
            self.take()
            return NotNode(self.parse_unary())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        tok = self.take()
        if tok.kind == "TERM":
            assert tok.term is not None
            return TermNode(tok.term)
        if tok.kind == "(":
            node = self.parse_or()
            close = self.take()
            if close.kind != ")":
                raise self.error(close, "')' to close the '(' at position " + str(tok.pos))
            return node
        raise self.error(tok, "a term, a \"phrase\", NOT or '('")


def parse_query(query: str, *, source: str = "<query>", key: str = "query") -> Node:
    """Parse ``query`` into a tree; ``source``/``key`` name it in a :class:`ConfigError`."""
    if not query.strip():
        raise ConfigError(
            source, key, "the query is empty", 'write a query such as nato OR "eu defence"'
        )
    return _Parser(query, source, key).parse()


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Hit:
    """Where a term occurs: offset of its first character in the scanned text."""

    term: Term
    pos: int


@dataclass
class ScanResult:
    """All term occurrences in one text, by term (positions ascending)."""

    positions: dict[Term, list[int]] = field(default_factory=dict)

    @property
    def present(self) -> frozenset[Term]:
        return frozenset(self.positions)

    def count(self, term: Term, *, before: int | None = None, after: int | None = None) -> int:
        """How many times ``term`` occurs (optionally only at offsets < before / >= after)."""
        return sum(
            1
            for p in self.positions.get(term, ())
            if (before is None or p < before) and (after is None or p >= after)
        )


class _Index:
    """Words of one text as a space-joined string, with a map back to text offsets."""

    def __init__(self, text: str, *, folded: bool) -> None:
        self.orig_starts: list[int] = []
        self.norm_starts: list[int] = []
        parts: list[str] = [" "]
        pos = 1
        for m in _WORD_RE.finditer(text):
            w = fold(m.group()) if folded else m.group()
            self.orig_starts.append(m.start())
            self.norm_starts.append(pos)
            parts.append(w)
            parts.append(" ")
            pos += len(w) + 1
        self.string = "".join(parts)

    def original(self, key_start: int) -> int:
        """Text offset of the word that starts just after the key's leading space."""
        i = bisect_left(self.norm_starts, key_start + 1)
        return self.orig_starts[i]


def _build_automaton(terms: Iterable[Term]) -> Any:
    by_key: dict[str, list[Term]] = {}
    for t in terms:
        by_key.setdefault(t.key, []).append(t)
    automaton = ahocorasick.Automaton()
    for k, ts in by_key.items():
        automaton.add_word(k, (len(k), tuple(ts)))
    if by_key:
        automaton.make_automaton()
    return automaton


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

    def _compile(self) -> None:
        self._folded = _build_automaton(t for t in self.terms if not t.case_sensitive)
        self._exact = _build_automaton(t for t in self.terms if t.case_sensitive)
        self._has_folded = any(not t.case_sensitive for t in self.terms)
        self._has_exact = any(t.case_sensitive for t in self.terms)

    def __getstate__(self) -> dict[str, Any]:
        return {"queries": self.queries, "sources": self.sources, "terms": self.terms}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.queries = state["queries"]
        self.sources = state["sources"]
        self.terms = state["terms"]
        self._compile()

    def scan(self, text: str) -> ScanResult:
        """Find every occurrence of every term in one pass per automaton."""
        result = ScanResult()
        for automaton, used, folded in (
            (self._folded, self._has_folded, True),
            (self._exact, self._has_exact, False),
        ):
            if not used:
                continue
            index = _Index(text, folded=folded)
            for end, (length, terms) in automaton.iter(index.string):
                pos = index.original(end - length + 1)
                for t in terms:
                    result.positions.setdefault(t, []).append(pos)
        for plist in result.positions.values():
            plist.sort()
        return result

    def matches(self, name: str, scan: ScanResult) -> bool:
        """Whether query ``name`` holds for a scanned text."""
        return evaluate(self.queries[name], scan.present)

    def matched_terms(self, name: str, scan: ScanResult) -> list[Term]:
        """The positive terms of query ``name`` that occur in the scanned text."""
        return [t for t in positive_terms_of(self.queries[name]) if t in scan.positions]


def compile_query(query: str, *, source: str = "<query>") -> Matcher:
    """A :class:`Matcher` holding one query under the name ``"query"``."""
    return Matcher({"query": query}, source=source)


def query_matches(query: str, text: str) -> bool:
    """Convenience: compile ``query`` and test it on ``text`` (compile once for repeated use)."""
    m = compile_query(query)
    return m.matches("query", m.scan(text))


__all__ = [
    "AndNode",
    "Hit",
    "Matcher",
    "Node",
    "NotNode",
    "OrNode",
    "ScanResult",
    "Term",
    "TermNode",
    "compile_query",
    "evaluate",
    "fold",
    "parse_query",
    "positive_terms_of",
    "query_matches",
    "terms_of",
    "words_of",
]
