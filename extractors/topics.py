"""Topic filters: keyword queries plus named entities, scored per document.

``config/topics.toml`` declares

* ``[[entities]]``: canonical ``id``, display ``name``, ``type`` (org | person | programme |
  place), ``aliases`` (in any language; ``=`` makes an alias case-sensitive, as in the query
  language of :mod:`extractors.query`), and optional ``context_aliases`` that count only when one
  of the ``context`` entities (default: the entity itself) is mentioned by a main alias. That is
  the disambiguation rule: "the alliance" counts as NATO only if NATO is also named.
* ``[topics.NAME]``: ``threshold``, scoring knobs, ``entities`` (id -> weight),
  ``entity_type_weights`` (type -> weight for entities not listed), ``queries.QNAME`` tables with a
  ``query`` and a ``weight`` (negative weights are penalties), and ``required``: query names or
  entity ids of which at least one must count, else the score is multiplied by
  ``missing_required_factor``.

Scoring. Each query that holds and each weighted entity mentioned is one piece of evidence of
weight ``w``. It adds ``w * title_weight`` if it holds on the title alone, plus
``w * body_weight * log2(1 + n * min(1, body_reference_words / body_words))`` for its ``n``
occurrences in the body (mentions are worth less in long texts: one passing mention in a long
article is weak evidence). With ``raw`` the sum, ``score = raw / (raw + half_score)`` (0 when raw
is not positive), so ``score >= 0.5`` exactly when ``raw >= half_score``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractors.query import Matcher, ScanResult, Term, evaluate, positive_terms_of, words_of
from newsmon.errors import ConfigError

ENTITY_TYPES = ("org", "person", "programme", "place")


# --------------------------------------------------------------------------- public dataclasses


@dataclass(frozen=True)
class Document:
    title: str
    text: str  # body: full article text or the feed summary


@dataclass(frozen=True)
class EntityHit:
    entity_id: str
    name: str
    type: str
    count: int
    first_pos: int  # char offset of the first mention in title + "\n" + text
    in_title: bool


@dataclass(frozen=True)
class TopicMatch:
    topic: str
    score: float
    relevant: bool
    explanation: dict[str, Any]


@dataclass(frozen=True)
class FilterResult:
    entities: tuple[EntityHit, ...]
    matches: tuple[TopicMatch, ...]

    def match(self, topic: str) -> TopicMatch:
        """The match for ``topic`` (KeyError if there is no such topic)."""
        for m in self.matches:
            if m.topic == topic:
                return m
        raise KeyError(topic)


# --------------------------------------------------------------------------- compiled config


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    type: str
    aliases: tuple[Term, ...]
    context_aliases: tuple[Term, ...] = ()
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicQuery:
    name: str
    weight: float


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    threshold: float
    half_score: float
    title_weight: float
    body_weight: float
    body_reference_words: int
    missing_required_factor: float
    queries: tuple[TopicQuery, ...]
    entity_weights: Mapping[str, float]
    entity_type_weights: Mapping[str, float]
    required: tuple[str, ...]

    def entity_weight(self, entity: Entity) -> float:
        return self.entity_weights.get(entity.id, self.entity_type_weights.get(entity.type, 0.0))


class TopicSet:
    """Compiled topics and entities sharing one :class:`Matcher`. Picklable."""

    def __init__(self, topics: Sequence[Topic], entities: Sequence[Entity], matcher: Matcher):
        self.topics = tuple(topics)
        self.entities = tuple(entities)
        self.matcher = matcher

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.topics)

    def topic(self, name: str) -> Topic:
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)


# --------------------------------------------------------------------------- loading


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(self.path, key, problem, fix)

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {value!r}", f"write [{key}] with keys")
        return value

    def known_keys(self, table: Mapping[str, Any], key: str, allowed: Sequence[str]) -> None:
        for k in table:
            if k not in allowed:
                close = difflib.get_close_matches(k, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
                full = f"{key}.{k}" if key else k
                raise self.fail(full, "unknown key", f"remove it ({hint})")

    def string(
        self, table: Mapping[str, Any], key: str, name: str, default: str | None = None
    ) -> str:
        value = table.get(name, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                f"{key}.{name}", f"must be a non-empty string, got {value!r}", f'set {name} = "..."'
            )
        return value

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        name: str,
        default: float,
        lo: float | None = None,
        hi: float | None = None,
        positive: bool = False,
    ) -> float:
        value = table.get(name, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if ok and lo is not None and value < lo:
            ok = False
        if ok and hi is not None and value > hi:
            ok = False
        if ok and positive and value <= 0:
            ok = False
        if not ok:
            if lo is not None and hi is not None:
                what = f"a number between {lo:g} and {hi:g}"
            elif positive:
                what = "a number greater than 0"
            else:
                what = "a number"
            raise self.fail(
                f"{key}.{name}", f"must be {what}, got {value!r}", f"set {name} = {default:g}"
            )
        return float(value)

    def strings(self, table: Mapping[str, Any], key: str, name: str) -> list[str]:
        value = table.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(
                f"{key}.{name}",
                f"must be a list of non-empty strings, got {value!r}",
                f'set {name} = ["...", "..."]',
            )
        return list(value)

    def alias(self, text: str, key: str) -> Term:
        term = Term.from_text(text)
        if not term.words or "*" in text.rstrip("*"):
            raise self.fail(
                key,
                f"alias {text!r} has no letters or digits, or a '*' before its end",
                'write the name as it appears in text, e.g. "European Defence Agency"',
            )
        return term


_TOPIC_KEYS = (
    "description",
    "threshold",
    "half_score",
    "title_weight",
    "body_weight",
    "body_reference_words",
    "missing_required_factor",
    "required",
    "entities",
    "entity_type_weights",
    "queries",
)
_ENTITY_KEYS = ("id", "name", "type", "aliases", "context_aliases", "context")


def load_topics(path: Path) -> TopicSet:
    """Read, validate and compile a topics file. Raises :class:`ConfigError`."""
    path = Path(path)
    v = _Validator(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(path, "", f"cannot read the file ({e.strerror})", "check the path") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, "", f"not valid TOML ({e})", "fix the TOML syntax") from e
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", "not UTF-8 text", "save the file as UTF-8") from e
    v.known_keys(raw, "", ("version", "entities", "topics"))
    version = raw.get("version", 1)
    if version != 1:
        raise v.fail("version", f"unsupported version {version!r}", "set version = 1")

    entities = _load_entities(v, raw.get("entities", []))
    entity_ids = {e.id for e in entities}

    topics_raw = v.table(raw.get("topics"), "topics")
    if not topics_raw:
        raise v.fail("topics", "no topics defined", "add a [topics.NAME] table")
    topics: list[Topic] = []
    queries: dict[str, str] = {}
    for tname, traw in topics_raw.items():
        key = f"topics.{tname}"
        t = v.table(traw, key)
        v.known_keys(t, key, _TOPIC_KEYS)
        qtable = v.table(t.get("queries", {}), f"{key}.queries")
        tqueries: list[TopicQuery] = []
        for qname, qraw in qtable.items():
            qkey = f"{key}.queries.{qname}"
            q = v.table(qraw, qkey)
            v.known_keys(q, qkey, ("query", "weight"))
            queries[f"{tname}.{qname}"] = v.string(q, qkey, "query")
            tqueries.append(TopicQuery(qname, v.number(q, qkey, "weight", 1.0)))
        ew_raw = v.table(t.get("entities", {}), f"{key}.entities")
        entity_weights: dict[str, float] = {}
        for eid in ew_raw:
            if eid not in entity_ids:
                close = difflib.get_close_matches(eid, sorted(entity_ids), n=1)
                fix = f"use {close[0]!r}" if close else "declare it in an [[entities]] table"
                raise v.fail(f"{key}.entities.{eid}", "unknown entity id", fix)
            entity_weights[eid] = v.number(ew_raw, f"{key}.entities", eid, 1.0)
        tw_raw = v.table(t.get("entity_type_weights", {}), f"{key}.entity_type_weights")
        v.known_keys(tw_raw, f"{key}.entity_type_weights", ENTITY_TYPES)
        type_weights = {k: v.number(tw_raw, f"{key}.entity_type_weights", k, 0.0) for k in tw_raw}
        required = v.strings(t, key, "required")
        for r in required:
            if r not in qtable and r not in entity_ids:
                raise v.fail(
                    f"{key}.required",
                    f"{r!r} is neither a query of this topic nor an entity id",
                    "name a key of [" + key + ".queries] or an entity id",
                )
        topics.append(
            Topic(
                name=tname,
                description=str(t.get("description", "")),
                threshold=v.number(t, key, "threshold", 0.5, 0.0, 1.0),
                half_score=v.number(t, key, "half_score", 3.0, positive=True),
                title_weight=v.number(t, key, "title_weight", 2.0, lo=0.0),
                body_weight=v.number(t, key, "body_weight", 1.0, lo=0.0),
                body_reference_words=int(
                    v.number(t, key, "body_reference_words", 300, positive=True)
                ),
                missing_required_factor=v.number(t, key, "missing_required_factor", 0.5, 0.0, 1.0),
                queries=tuple(tqueries),
                entity_weights=entity_weights,
                entity_type_weights=type_weights,
                required=tuple(required),
            )
        )
    alias_terms = [a for e in entities for a in (*e.aliases, *e.context_aliases)]
    matcher = Matcher(queries, alias_terms, source=str(path), key_prefix="topics.")
    return TopicSet(topics, entities, matcher)


def _load_entities(v: _Validator, raw: object) -> list[Entity]:
    if not isinstance(raw, list):
        raise v.fail("entities", f"must be an array of tables, got {raw!r}", "write [[entities]]")
    entities: list[Entity] = []
    seen: set[str] = set()
    for i, eraw in enumerate(raw):
        key = f"entities[{i}]"
        e = v.table(eraw, key)
        v.known_keys(e, key, _ENTITY_KEYS)
        eid = v.string(e, key, "id")
        key = f"entities[{i}] (id {eid!r})"
        if eid in seen:
            raise v.fail(key, f"duplicate entity id {eid!r}", "give each entity a unique id")
        seen.add(eid)
        etype = v.string(e, key, "type")
        if etype not in ENTITY_TYPES:
            raise v.fail(
                f"{key}.type",
                f"must be one of {', '.join(ENTITY_TYPES)}, got {etype!r}",
                'set type = "org"',
            )
        aliases = v.strings(e, key, "aliases")
        if not aliases:
            raise v.fail(f"{key}.aliases", "must list at least one alias", 'set aliases = ["..."]')
        entities.append(
            Entity(
                id=eid,
                name=v.string(e, key, "name"),
                type=etype,
                aliases=tuple(v.alias(a, f"{key}.aliases") for a in aliases),
                context_aliases=tuple(
                    v.alias(a, f"{key}.context_aliases")
                    for a in v.strings(e, key, "context_aliases")
                ),
                context=tuple(v.strings(e, key, "context")) or (eid,),
            )
        )
    for ent in entities:
        for c in ent.context:
            if c not in seen:
                raise v.fail(
                    f"entities (id {ent.id!r}).context",
                    f"unknown entity id {c!r}",
                    "name the id of another [[entities]] table",
                )
    return entities


# --------------------------------------------------------------------------- scoring


def _positions(scan: ScanResult, terms: Sequence[Term]) -> list[int]:
    out: set[int] = set()
    for t in terms:
        out.update(scan.positions.get(t, ()))
    return sorted(out)


def _entity_positions(topics: TopicSet, scan: ScanResult) -> dict[str, list[int]]:
    """Mention offsets per entity id; context aliases count only when a context entity is named."""
    main = {e.id: _positions(scan, e.aliases) for e in topics.entities}
    out: dict[str, list[int]] = {}
    for e in topics.entities:
        pos = main[e.id]
        if e.context_aliases and any(main[c] for c in e.context):
            pos = sorted(set(pos) | set(_positions(scan, e.context_aliases)))
        out[e.id] = pos
    return out


def _find_entities(
    topics: TopicSet, positions: Mapping[str, list[int]], title_len: int
) -> list[EntityHit]:
    hits = [
        EntityHit(e.id, e.name, e.type, len(pos), pos[0], in_title=pos[0] < title_len)
        for e in topics.entities
        if (pos := positions[e.id])
    ]
    hits.sort(key=lambda h: h.first_pos)
    return hits


def _body_strength(n: int, body_words: int, reference: int) -> float:
    if n <= 0:
        return 0.0
    return math.log2(1 + n * min(1.0, reference / max(body_words, 1)))


def _score_topic(
    topic: Topic,
    topics: TopicSet,
    scan: ScanResult,
    entity_hits: Sequence[EntityHit],
    entity_positions: Mapping[str, list[int]],
    title_len: int,
    body_words: int,
) -> TopicMatch:
    present_all = scan.present
    present_title = frozenset(t for t, ps in scan.positions.items() if ps[0] < title_len)
    evidence: list[dict[str, Any]] = []
    counted: set[str] = set()

    def add(kind: str, name: str, weight: float, in_title: bool, n_body: int, **extra: Any) -> None:
        title_part = weight * topic.title_weight if in_title else 0.0
        body_part = (
            weight
            * topic.body_weight
            * _body_strength(n_body, body_words, topic.body_reference_words)
        )
        evidence.append(
            {
                "kind": kind,
                "name": name,
                "weight": weight,
                "in_title": in_title,
                "body_count": n_body,
                "contribution": round(title_part + body_part, 4),
                **extra,
            }
        )
        counted.add(name)

    for q in topic.queries:
        node = topics.matcher.queries[f"{topic.name}.{q.name}"]
        if not evaluate(node, present_all):
            continue
        terms = [t for t in positive_terms_of(node) if t in present_all]
        in_title = evaluate(node, present_title)
        n_body = sum(scan.count(t, after=title_len) for t in terms)
        add("query", q.name, q.weight, in_title, n_body, terms=[str(t) for t in terms])

    for hit in entity_hits:
        entity = next(e for e in topics.entities if e.id == hit.entity_id)
        w = topic.entity_weight(entity)
        if w == 0:
            continue
        n_body = sum(1 for p in entity_positions[hit.entity_id] if p >= title_len)
        add("entity", hit.entity_id, w, hit.in_title, n_body, type=hit.type)

    raw = sum(float(e["contribution"]) for e in evidence)
    score = raw / (raw + topic.half_score) if raw > 0 else 0.0
    required_met = not topic.required or any(r in counted for r in topic.required)
    if not required_met:
        score *= topic.missing_required_factor
    score = round(score, 4)
    evidence.sort(key=lambda e: -abs(float(e["contribution"])))
    explanation: dict[str, Any] = {
        "raw": round(raw, 4),
        "half_score": topic.half_score,
        "threshold": topic.threshold,
        "required_met": required_met,
        "body_words": body_words,
        "evidence": evidence,
    }
    return TopicMatch(topic.name, score, score >= topic.threshold, explanation)


def filter_document(doc: Document, topics: TopicSet) -> FilterResult:
    """Entities and one :class:`TopicMatch` per topic for one document."""
    title_len = len(doc.title)
    scan = topics.matcher.scan(doc.title + "\n" + doc.text)
    positions = _entity_positions(topics, scan)
    hits = _find_entities(topics, positions, title_len)
    body_words = len(words_of(doc.text))
    matches = tuple(
        _score_topic(t, topics, scan, hits, positions, title_len, body_words) for t in topics.topics
    )
    return FilterResult(tuple(hits), matches)


def filter_documents(docs: Sequence[Document], topics: TopicSet) -> list[FilterResult]:
    """:func:`filter_document` over a batch, in order."""
    return [filter_document(d, topics) for d in docs]


__all__ = [
    "ENTITY_TYPES",
    "Document",
    "Entity",
    "EntityHit",
    "FilterResult",
    "Topic",
    "TopicMatch",
    "TopicQuery",
    "TopicSet",
    "filter_document",
    "filter_documents",
    "load_topics",
]
