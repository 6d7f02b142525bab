"""The query language's words, terms, syntax tree and parser (the syntax is described in
:mod:`newsmon.extractors.query`, which re-exports everything public here).

Words are runs of letters and digits (any script): :func:`words_of` splits a text into them and
:func:`fold` / :func:`folded_words_of` give their case- and accent-folded forms, the same ones
the matcher scans. A :class:`Term` is a word or phrase, maybe a prefix, maybe case-sensitive;
:func:`parse_query` turns a query into a tree of :data:`Node` and raises
:class:`newsmon.core.errors.ConfigError` naming the position and what was expected on a syntax
error.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

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


def _around(text: str, pos: int, width: int = 40) -> str:
    """``text`` as an error shows it: whole when short, else ``width`` characters either side
    of ``pos`` (a 600 KB query made a 600 KB error line)."""
    text = text.strip() if len(text) <= 2 * width else text
    if len(text) <= 2 * width:
        return text
    start, end = max(0, pos - width), min(len(text), pos + width)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _fail(source: str, key: str, query: str, pos: int, problem: str) -> ConfigError:
    line_no = query.count("\n", 0, pos) + 1
    line_start = query.rfind("\n", 0, pos) + 1
    line_end = query.find("\n", pos)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    column = pos - line_start + 1
    where = f"position {pos} (line {line_no}, column {column}: {_around(line, column - 1)!r})"
    if "\n" not in query.strip():
        where = f"position {pos} in {_around(query, pos)!r}"
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


# Bounds on a query a stranger may have written (an imported topics file, a saved search): the
# parser and the matcher recurse over the tree, so 5,000 nested groups stopped them with a
# RecursionError and a traceback (issue 21); and every term is an automaton entry.
MAX_DEPTH = 64  # nested groups, NOT, field prefixes and NEAR chains
MAX_TERMS = 10_000


class _Parser:
    def __init__(self, query: str, source: str, key: str) -> None:
        self.query, self.source, self.key = query, source, key
        self.tokens = _tokenize(query, source, key)
        self.i = 0
        self.depth = 0
        terms = [t for t in self.tokens if t.kind == "TERM"]
        if len(terms) > MAX_TERMS:
            raise _fail(
                source,
                key,
                query,
                terms[MAX_TERMS].pos,
                f"more than {MAX_TERMS} terms in one query",
            )

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(
                self.source,
                self.key,
                self.query,
                tok.pos,
                f"nested deeper than {MAX_DEPTH} levels (groups, NOT, fields and NEAR chains)",
            )

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
        depth = self.depth
        while self.peek().kind == "NEAR":
            op = self.take()
            self.enter(op)  # each NEAR wraps the chain so far: a level of the tree
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
        self.depth = depth
        return node

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok.kind in ("NOT", "FIELD"):
            self.take()
            self.enter(tok)
            inner = self.parse_unary()
            self.depth -= 1
            return NotNode(inner) if tok.kind == "NOT" else FieldNode(tok.text[:-1], inner)
        return self.parse_atom()

    def parse_atom(self) -> Node:
        tok = self.take()
        if tok.kind == "TERM":
            assert tok.term is not None
            return TermNode(tok.term)
        if tok.kind == "(":
            self.enter(tok)
            node = self.parse_or()
            close = self.take()
            if close.kind != ")":
                raise self.error(close, "')' to close the '(' at position " + str(tok.pos))
            self.depth -= 1
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


__all__ = [
    "AndNode",
    "FieldNode",
    "NearNode",
    "Node",
    "NotNode",
    "OrNode",
    "Term",
    "TermNode",
    "fold",
    "folded_words_of",
    "parse_query",
    "positive_terms_of",
    "terms_of",
    "words_of",
]
