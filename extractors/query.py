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
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, compress, count
from operator import add
from typing import Any

import ahocorasick

from newsmon.core.errors import ConfigError

_OPERATORS = frozenset({"AND", "OR", "NOT"})
_NEAR_RE = re.compile(r"NEAR(?:/(\d+))?")
_FIELDS = ("title", "lead", "body")
_FIELD_RE = re.compile(r"(title|lead|body):")
_MIN_PREFIX = 3
_MAX_NEAR = 1000


def fold(word: str) -> str:
    """Case- and accent-fold one word (``Europäische`` -> ``europaische``)."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class _CharTable(dict[int, str]):
    """``str.translate`` table: letters and digits kept (or folded), anything else a space.

    Splitting the translated text on whitespace gives the same words as the regular expression
    ``[^\\W_]+`` several times faster (measured: 65 vs 330 us for 5 KB of text). Entries are made
    on first sight of a character, so the table holds only what texts actually contain.
    """

    def __init__(self, folding: bool) -> None:
        super().__init__()
        self.folding = folding

    def __missing__(self, codepoint: int) -> str:
        c = chr(codepoint)
        value = (fold(c) if self.folding else c) if c.isalnum() else " "
        self[codepoint] = value
        return value


_SEPARATE = _CharTable(folding=False)
_FOLD = _CharTable(folding=True)


def words_of(text: str) -> list[str]:
    """Split ``text`` into the words the matcher sees (runs of letters and digits)."""
    return text.translate(_SEPARATE).split()


def folded_words_of(text: str) -> list[str]:
    """:func:`words_of`, each word :func:`fold`-ed."""
    return text.translate(_FOLD).split()


# --------------------------------------------------------------------------- terms and AST


@dataclass(frozen=True, order=True)
class Term:
    """One searchable unit: a word or a phrase, maybe a prefix, maybe case-sensitive."""

    words: tuple[str, ...]
    prefix: bool = False
    case_sensitive: bool = False
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # terms are dict keys in every scan: hash once, not per lookup
        object.__setattr__(self, "_hash", hash((self.words, self.prefix, self.case_sensitive)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def folded_key(self) -> str:
        """The key of the case-folded word sequence (case-sensitive terms are checked after)."""
        return " " + " ".join(fold(w) for w in self.words) + ("" if self.prefix else " ")

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
    # the plain-term children as a set, the rest apart: a long OR list is evaluated by one set
    # intersection with the terms found, not one lookup per term
    terms: frozenset[Term] = field(init=False, repr=False, compare=False)
    others: tuple[Node, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        term_nodes = [c.term for c in self.children if isinstance(c, TermNode)]
        object.__setattr__(self, "terms", frozenset(term_nodes))
        object.__setattr__(
            self, "others", tuple(c for c in self.children if not isinstance(c, TermNode))
        )


@dataclass(frozen=True)
class NearNode:
    """Both sides hold with an occurrence of each at most ``distance`` words apart."""

    left: Node
    right: Node
    distance: int


@dataclass(frozen=True)
class FieldNode:
    """``child`` evaluated on one field of the document only (title, lead or body)."""

    field: str
    child: Node


Node = TermNode | NotNode | AndNode | OrNode | NearNode | FieldNode


def _children(n: Node) -> tuple[Node, ...]:
    if isinstance(n, TermNode):
        return ()
    if isinstance(n, NotNode | FieldNode):
        return (n.child,)
    if isinstance(n, NearNode):
        return (n.left, n.right)
    return n.children


def terms_of(node: Node, *, positive_only: bool = False) -> list[Term]:
    """Every term in the tree, in order of appearance (with repeats removed); with
    ``positive_only``, only those that count *for* a match (not under a NOT)."""
    out: dict[Term, None] = {}  # an ordered set

    def walk(n: Node) -> None:
        if isinstance(n, TermNode):
            out.setdefault(n.term)
        elif not (positive_only and isinstance(n, NotNode)):
            for child in _children(n):
                walk(child)

    walk(node)
    return list(out)


def positive_terms_of(node: Node) -> list[Term]:
    """The terms that count *for* a match (those not under a NOT)."""
    return terms_of(node, positive_only=True)


# --------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class _Token:
    kind: str  # "(" ")" "AND" "OR" "NOT" "NEAR" "FIELD" "TERM" "END"
    pos: int
    text: str
    term: Term | None = None
    number: int = 0  # the distance of NEAR/N


def _fail(source: str, key: str, query: str, pos: int, problem: str) -> ConfigError:
    line_no = query.count("\n", 0, pos) + 1
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    column = pos - line_start + 1
    where = f"position {pos} (line {line_no}, column {column}: {line.strip()!r})"
    if "\n" not in query.strip():
        where = f"position {pos} in {query!r}"
    return ConfigError(
        source,
        key,
        f"query syntax error at {where}: {problem}",
        'write terms, "quoted phrases", prefix* and =CaseSensitive joined by AND, OR, NOT, '
        "NEAR/N and parentheses, with title:/lead:/body: scopes, e.g. "
        "title:(nato OR otan) AND defen* NEAR/10 spending",
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
        field_m = _FIELD_RE.match(query, i)
        if field_m:
            i = field_m.end()
            if i >= n or query[i].isspace() or query[i] == ")":
                raise _fail(
                    source,
                    key,
                    query,
                    i,
                    f"expected a term, phrase or '(' after {field_m.group()!r}",
                )
            tokens.append(_Token("FIELD", start, field_m.group(), None))
            continue
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
            near = None if case_sensitive else _NEAR_RE.fullmatch(body)
            if near:
                if near.group(1) is None or not 0 < int(near.group(1)) <= _MAX_NEAR:
                    raise _fail(
                        source,
                        key,
                        query,
                        start,
                        f"expected NEAR/N with a distance in words from 1 to {_MAX_NEAR}, "
                        f"e.g. NEAR/10, got {body!r}",
                    )
                tokens.append(_Token("NEAR", start, body, number=int(near.group(1))))
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
        children = [self.parse_near()]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.take()
            elif kind not in ("TERM", "(", "NOT", "FIELD"):
                break
            children.append(self.parse_near())
        return children[0] if len(children) == 1 else AndNode(tuple(children))

    def parse_near(self) -> Node:
        node = self.parse_unary()
        while self.peek().kind == "NEAR":
            op = self.take()
            right = self.parse_unary()
            for side in (node, right):
                if _has_not(side):
                    raise _fail(
                        self.source,
                        self.key,
                        self.query,
                        op.pos,
                        f"expected terms, phrases or groups on both sides of {op.text}, not NOT",
                    )
            node = NearNode(node, right, op.number)
        return node

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "NOT":
            self.take()
            return NotNode(self.parse_unary())
        if tok.kind == "FIELD":
            self.take()
            return FieldNode(tok.text[:-1], self.parse_unary())
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


def _has_not(node: Node) -> bool:
    return isinstance(node, NotNode) or any(_has_not(c) for c in _children(node))


def parse_query(query: str, *, source: str = "<query>", key: str = "query") -> Node:
    """Parse ``query`` into a tree; ``source``/``key`` name it in a :class:`ConfigError`."""
    if not query.strip():
        raise ConfigError(
            source, key, "the query is empty", 'write a query such as nato OR "eu defence"'
        )
    return _Parser(query, source, key).parse()


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
    "match_positions",
    "parse_query",
    "positive_terms_of",
    "query_matches",
    "terms_of",
    "words_of",
]
