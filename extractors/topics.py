"""Topic filters: keyword queries plus named entities and similarity to examples, per document.

``config/topics.toml`` declares (docs/topics.md is the guide):

* ``lead_words``: how many words after the title form the lead.
* ``[[entities]]``: canonical ``id``, display ``name``, ``type`` (org | person | programme |
  place), ``aliases`` (in any language; ``=`` makes an alias case-sensitive, as in the query
  language of :mod:`newsmon.extractors.query`), and optional ``context_aliases`` that count only
  within ``context_window`` words (default 40) of a main-alias mention of one of the ``context``
  entities (default: the entity itself). That is the disambiguation rule: "the alliance" is NATO
  only near a mention of NATO.
* ``[topics.NAME]``: ``threshold``; ``queries.QNAME`` tables with a ``query`` and a ``weight``
  (negative weights are penalties); ``entities`` (id -> weight) and ``entity_type_weights``
  (type -> weight for entities not listed); ``examples`` (a directory of example articles,
  relative to the topics file) with ``similarity_weight`` and ``similarity_range``; and
  ``required``: groups of query names or entity ids. Each group needs one member counted in the
  title or the lead (``required_in_lead``), else the score is multiplied by
  ``missing_required_factor``; ``model``: a trained relevance model
  (:mod:`newsmon.extractors.relevance`) that decides instead of the threshold; ``include`` /
  ``exclude``: a user's hard rules, queries that make an article relevant / not relevant whatever
  its score (``exclude`` wins).

Scoring. Each query that holds and each weighted entity mentioned is one piece of evidence of
weight ``w``, contributing ``w * title_weight`` when it holds on the title alone, plus
``w * lead_weight * log2(1 + n)`` for its ``n`` occurrences in the lead, plus
``w * body_weight * log2(1 + m * min(1, body_reference_words / rest_words))`` for its ``m``
occurrences in the rest of the body (a passing mention deep in a long article is weak evidence).
Similarity to the examples adds up to ``similarity_weight``. With ``raw`` the sum,
``score = raw / (raw + half_score)`` (0 when raw is not positive), so ``score >= 0.5`` exactly
when ``raw >= half_score``. The explanation lists every piece of evidence with where it was found
and what it contributed; :func:`describe` renders it as one line.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from newsmon.core.errors import ConfigError
from newsmon.extractors.embedding import Given, embed, embed_text, text_key
from newsmon.extractors.query import (
    Matcher,
    Region,
    ScanResult,
    Term,
    count_in,
    evaluate,
    match_positions,
    parse_query,
)
from newsmon.extractors.relevance import (
    RelevanceModel,
    describe_model,
    evidence_features,
    load_model,
)
from newsmon.extractors.similarity import Profile, load_examples, vector

ENTITY_TYPES = ("org", "person", "programme", "place")


# --------------------------------------------------------------------------- public dataclasses


@dataclass(frozen=True)
class Document:
    title: str
    text: str  # body: full article text or the feed summary

    @classmethod
    def of(cls, title: str | None, text: str | None, summary: str | None) -> Document:
        """What an article is scored on: its title and its text, or the feed summary if the
        page gave no text (the same rule at ingest and at rescore)."""
        return cls(title or "", text or summary or "")


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
    # the text's embedding and its key (extractors.embedding), when a topic has a model
    vector: Any = field(default=None, compare=False)
    vector_key: str | None = None

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
    context_window: int = 40


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
    lead_weight: float
    body_weight: float
    body_reference_words: int
    missing_required_factor: float
    queries: tuple[TopicQuery, ...]
    entity_weights: Mapping[str, float]
    entity_type_weights: Mapping[str, float]
    required: tuple[tuple[str, ...], ...]  # groups: each needs one of its names to count
    required_in_lead: bool = True
    profile: Profile | None = None
    similarity_weight: float = 0.0
    similarity_range: tuple[float, float] = (0.1, 0.3)
    model: RelevanceModel | None = None  # learned from labelled news: it decides when present
    model_file: Path | None = None  # where `model` says it is (read or not: load_topics(models=))
    # what the evidence depends on (the topic's table but its model and threshold, the
    # entities, lead_words): a model trained under another fingerprint read other evidence
    fingerprint: str = ""
    include: bool = False  # a hard include query ("include" key): relevant whenever it holds
    exclude: bool = False  # a hard exclude query: never relevant when it holds (wins)

    def entity_weight(self, entity: Entity) -> float:
        return self.entity_weights.get(entity.id, self.entity_type_weights.get(entity.type, 0.0))


class TopicSet:
    """Compiled topics and entities sharing one :class:`Matcher`. Picklable."""

    def __init__(
        self,
        topics: Sequence[Topic],
        entities: Sequence[Entity],
        matcher: Matcher,
        lead_words: int = 60,
    ):
        self.topics = tuple(topics)
        self.entities = tuple(
            replace(
                e,
                aliases=tuple(matcher.canonical(t) for t in e.aliases),
                context_aliases=tuple(matcher.canonical(t) for t in e.context_aliases),
            )
            for e in entities
        )
        self.matcher = matcher
        self.lead_words = lead_words
        self._by_id = {e.id: e for e in self.entities}
        # which entities an alias term belongs to: only entities with a term found are looked at
        self.entities_of: dict[Term, list[str]] = {}
        for e in self.entities:
            for t in (*e.aliases, *e.context_aliases):
                self.entities_of.setdefault(t, []).append(e.id)

    def entity(self, entity_id: str) -> Entity:
        return self._by_id[entity_id]

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

    def boolean(self, table: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(
                f"{key}.{name}", f"must be true or false, got {value!r}", f"set {name} = true"
            )
        return value

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
    "lead_weight",
    "body_weight",
    "examples",
    "similarity_weight",
    "similarity_range",
    "body_reference_words",
    "missing_required_factor",
    "required",
    "required_in_lead",
    "entities",
    "entity_type_weights",
    "queries",
    "model",
    "include",
    "exclude",
)
_ENTITY_KEYS = ("id", "name", "type", "aliases", "context_aliases", "context", "context_window")


def load_topics(path: Path, *, models: bool = True) -> TopicSet:
    """Read, validate and compile a topics file. Raises :class:`ConfigError`. With
    ``models=False`` the topics' ``model`` files are not read (``newsmon train`` replaces them)."""
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
    v.known_keys(raw, "", ("version", "lead_words", "entities", "topics"))
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
            text = v.string(q, qkey, "query")
            parse_query(text, source=str(path), key=f"{qkey}.query")  # errors name the TOML key
            queries[f"{tname}.{qname}"] = text
            tqueries.append(TopicQuery(qname, v.number(q, qkey, "weight", 1.0)))
        hard = {}
        for which in ("include", "exclude"):
            if which in t:
                text = v.string(t, key, which)
                parse_query(text, source=str(path), key=f"{key}.{which}")
                queries[f"{tname}#{which}"] = text
                hard[which] = True
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
        required = _required_groups(v, t, key, set(qtable), entity_ids)
        model_file = _model_file(v, t, key)
        topics.append(
            Topic(
                name=tname,
                description=str(t.get("description", "")),
                threshold=v.number(t, key, "threshold", 0.5, 0.0, 1.0),
                half_score=v.number(t, key, "half_score", 3.0, positive=True),
                title_weight=v.number(t, key, "title_weight", 2.0, lo=0.0),
                lead_weight=v.number(t, key, "lead_weight", 1.0, lo=0.0),
                body_weight=v.number(t, key, "body_weight", 0.5, lo=0.0),
                body_reference_words=int(
                    v.number(t, key, "body_reference_words", 300, positive=True)
                ),
                missing_required_factor=v.number(t, key, "missing_required_factor", 0.5, 0.0, 1.0),
                queries=tuple(tqueries),
                entity_weights=entity_weights,
                entity_type_weights=type_weights,
                required=required,
                required_in_lead=v.boolean(t, key, "required_in_lead", True),
                profile=_load_profile(v, t, key),
                similarity_weight=v.number(t, key, "similarity_weight", 0.0, lo=0.0),
                similarity_range=_similarity_range(v, t, key),
                model=_load_model(v, model_file, key, tname) if models else None,
                model_file=model_file,
                fingerprint=topic_fingerprint(raw, tname),
                include=hard.get("include", False),
                exclude=hard.get("exclude", False),
            )
        )
    alias_terms = [a for e in entities for a in (*e.aliases, *e.context_aliases)]
    matcher = Matcher(queries, alias_terms, source=str(path), key_prefix="topics.")
    lead_words = int(v.number(raw, "", "lead_words", 60, lo=0, hi=10_000))
    return TopicSet(topics, entities, matcher, lead_words)


def _required_groups(
    v: _Validator, t: Mapping[str, Any], key: str, queries: set[str], entity_ids: set[str]
) -> tuple[tuple[str, ...], ...]:
    """``required``: a list of names (one group) or a list of such lists (all groups needed)."""
    value = t.get("required", [])
    fix = 'set required = ["query_name", "entity_id"] or [["a", "b"], ["c"]]'
    if not isinstance(value, list):
        raise v.fail(f"{key}.required", f"must be a list, got {value!r}", fix)
    if not value:
        return ()
    groups = value if all(isinstance(g, list) for g in value) else [value]
    out: list[tuple[str, ...]] = []
    for group in groups:
        if not group or not all(isinstance(r, str) for r in group):
            raise v.fail(f"{key}.required", f"a group must list names, got {group!r}", fix)
        for r in group:
            if r not in queries and r not in entity_ids:
                raise v.fail(
                    f"{key}.required",
                    f"{r!r} is neither a query of this topic nor an entity id",
                    "name a key of [" + key + ".queries] or an entity id",
                )
        out.append(tuple(group))
    return tuple(out)


def _load_profile(v: _Validator, t: Mapping[str, Any], key: str) -> Profile | None:
    """The topic's example profile: ``examples`` is a directory relative to the topics file."""
    if "examples" not in t:
        return None
    rel = v.string(t, key, "examples")
    examples = load_examples(v.path.parent / rel)
    return Profile.from_texts([f"{e.title}\n{e.text}" for e in examples])


def _model_file(v: _Validator, t: Mapping[str, Any], key: str) -> Path | None:
    """``model``: an artifact path relative to the topics file."""
    return v.path.parent / v.string(t, key, "model") if "model" in t else None


def _load_model(v: _Validator, path: Path | None, key: str, topic: str) -> RelevanceModel | None:
    """The topic's relevance model, trained for this topic."""
    if path is None:
        return None
    model = load_model(path, source=str(v.path), key=f"{key}.model")
    if model.topic != topic:
        raise v.fail(
            f"{key}.model",
            f"the model at {path} was trained for topic {model.topic!r}",
            f"train one for {topic!r} with `newsmon train --topic {topic}`",
        )
    return model


def topic_fingerprint(raw: Mapping[str, Any], topic: str) -> str:
    """A hash of what a topic's evidence depends on, from the parsed topics file."""
    import hashlib
    import json

    table = {
        k: v
        for k, v in raw.get("topics", {}).get(topic, {}).items()
        if k not in ("model", "threshold", "description", "examples")  # not evidence
    }
    basis = {"topic": table, "entities": raw.get("entities", []), "lead": raw.get("lead_words")}
    text = json.dumps(basis, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def declared_topics(topics_file: Path) -> tuple[str, ...]:
    """The topic names a topics file declares, without compiling it (a quick check for
    commands that only take a topic name; a bad file is a ConfigError as in load_topics)."""
    try:
        raw = tomllib.loads(Path(topics_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return load_topics(topics_file).names  # raises the full, specific error
    topics = raw.get("topics")
    return tuple(topics) if isinstance(topics, dict) else load_topics(topics_file).names


def _similarity_range(v: _Validator, t: Mapping[str, Any], key: str) -> tuple[float, float]:
    value = t.get("similarity_range", [0.1, 0.3])
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        and 0 <= value[0] < value[1] <= 1
    )
    if not ok:
        raise v.fail(
            f"{key}.similarity_range",
            f"must be [low, high] with 0 <= low < high <= 1, got {value!r}",
            "set similarity_range = [0.1, 0.3]",
        )
    return (float(value[0]), float(value[1]))


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
                context_window=int(v.number(e, key, "context_window", 40, lo=1, hi=10_000)),
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


def _mentions(scan: ScanResult, terms: Sequence[Term]) -> list[int]:
    """Word indexes of the mentions by any of ``terms``, ascending."""
    return sorted({i for t in terms for i in scan.words.get(t, ())})


def _near(p: int, others: Sequence[int], window: int) -> bool:
    return any(abs(p - o) <= window for o in others)


def _entity_mentions(topics: TopicSet, scan: ScanResult) -> dict[str, list[int]]:
    """Mention word indexes per entity id. A context alias ("the alliance") counts only within
    the entity's ``context_window`` words of a main-alias mention of one of its ``context``
    entities."""
    found_ids = {eid for t in scan.words for eid in topics.entities_of.get(t, ())}
    candidates = [e for e in topics.entities if e.id in found_ids]
    main = {e.id: _mentions(scan, e.aliases) for e in candidates}
    for e in candidates:
        for c in e.context:
            if c not in main:
                main[c] = _mentions(scan, topics.entity(c).aliases)
    out: dict[str, list[int]] = {}
    for e in candidates:
        found = main[e.id]
        if e.context_aliases:
            anchors = sorted(p for c in e.context for p in main[c])
            extra = [
                w for w in _mentions(scan, e.context_aliases) if _near(w, anchors, e.context_window)
            ]
            if extra:
                found = sorted(set(found) | set(extra))
        if found:
            out[e.id] = found
    return out


def _find_entities(
    topics: TopicSet, mentions: Mapping[str, list[int]], scan: ScanResult
) -> list[EntityHit]:
    hits = []
    for eid, found in mentions.items():
        e = topics.entity(eid)
        first = found[0]
        hits.append(
            EntityHit(
                eid, e.name, e.type, len(found), scan.char_offset(first), first < scan.title_words
            )
        )
    hits.sort(key=lambda h: h.first_pos)
    return hits


@dataclass(frozen=True)
class _Regions:
    title: Region
    lead: Region
    rest: Region

    @classmethod
    def of(cls, scan: ScanResult) -> _Regions:
        return cls(scan.region("title"), scan.region("lead"), scan.region("rest"))

    @property
    def rest_words(self) -> int:
        return self.rest[1] - self.rest[0]


def _strength(n: int, scale: float = 1.0) -> float:
    """Diminishing returns: one mention 1.0, two 1.58, four 2.32 (times ``scale``)."""
    return math.log2(1 + n * scale) if n > 0 else 0.0


def _evidence(
    topic: Topic,
    regions: _Regions,
    kind: str,
    name: str,
    weight: float,
    found: Sequence[int],
    in_title: bool,
    **extra: Any,
) -> dict[str, Any]:
    """One piece of evidence: where it was found and what it contributes to the raw score.

    Title: ``weight * title_weight`` once. Lead: ``weight * lead_weight * log2(1 + n)``. Rest of
    the body: ``weight * body_weight * log2(1 + n * min(1, body_reference_words / rest_words))``.
    """
    n_lead = count_in(found, regions.lead)
    n_rest = count_in(found, regions.rest)
    scale = min(1.0, topic.body_reference_words / max(regions.rest_words, 1))
    title_part = weight * topic.title_weight if in_title else 0.0
    lead_part = weight * topic.lead_weight * _strength(n_lead)
    rest_part = weight * topic.body_weight * _strength(n_rest, scale)
    return {
        "kind": kind,
        "name": name,
        "weight": weight,
        "in_title": in_title,
        "lead_count": n_lead,
        "body_count": n_rest,
        "contribution": round(title_part + lead_part + rest_part, 4),
        **extra,
    }


_SIMILARITY_FULL_WORDS = 20


def _shown(term: Term, scan: ScanResult) -> str:
    """A term as the explanation shows it: prefix terms by the words they matched."""
    if not term.prefix:
        return str(term)
    found = scan.surface(term)
    return f'"{found}"' if len(term.words) > 1 else found


def _similarity_evidence(topic: Topic, doc_vector: Mapping[str, float]) -> dict[str, Any] | None:
    """Similarity to the examples, mapped from ``similarity_range`` onto 0..weight.

    A cosine over a handful of words is noise ("NATO met" shares half its words with any NATO
    story), so texts with fewer than 20 distinct content words get a proportional share.
    """
    if topic.profile is None or topic.similarity_weight <= 0:
        return None
    sim = topic.profile.similarity(doc_vector)
    lo, hi = topic.similarity_range
    share = min(1.0, max(0.0, (sim - lo) / (hi - lo)))
    confidence = min(1.0, len(doc_vector) / _SIMILARITY_FULL_WORDS)
    return {
        "kind": "similarity",
        "name": "examples",
        "weight": topic.similarity_weight,
        "similarity": round(sim, 4),
        "contribution": round(topic.similarity_weight * share * confidence, 4),
    }


def _score_topic(
    topic: Topic,
    topics: TopicSet,
    scan: ScanResult,
    entity_hits: Sequence[EntityHit],
    mentions: Mapping[str, list[int]],
    doc_vector: Mapping[str, float],
) -> TopicMatch:
    regions = _Regions.of(scan)
    evidence: list[dict[str, Any]] = []
    for q in topic.queries:
        node = topics.matcher.queries[f"{topic.name}.{q.name}"]
        found = match_positions(node, scan)
        if found is None:
            continue
        terms = topics.matcher.matched_terms(f"{topic.name}.{q.name}", scan)
        in_title = evaluate(node, scan, regions.title)
        evidence.append(
            _evidence(
                topic, regions, "query", q.name, q.weight, found, in_title,
                terms=[_shown(t, scan) for t in terms],
            )
        )  # fmt: skip
    for hit in entity_hits:
        w = topic.entity_weight(topics.entity(hit.entity_id))
        if w:
            found = mentions[hit.entity_id]
            evidence.append(
                _evidence(
                    topic, regions, "entity", hit.entity_id, w, found, hit.in_title,
                    type=hit.type, label=hit.name,
                )
            )  # fmt: skip
    sim = _similarity_evidence(topic, doc_vector)
    if sim is not None:
        evidence.append(sim)

    raw = sum(float(e["contribution"]) for e in evidence)
    score = raw / (raw + topic.half_score) if raw > 0 else 0.0
    # the main subject shows in the title or the lead: a required concept only deep in a long
    # body is a passing mention (with no body beyond the lead, the whole text is the lead)
    counted = {
        e["name"]
        for e in evidence
        if e["kind"] != "similarity"
        and e["contribution"] > 0
        and (e["in_title"] or e["lead_count"] or not topic.required_in_lead)
    }
    missing = [g for g in topic.required if not any(r in counted for r in g)]
    required_met = not missing
    if not required_met:
        score *= topic.missing_required_factor
    score = round(score, 4)
    evidence.sort(key=lambda e: -abs(float(e["contribution"])))
    forced = _forced(topic, topics, scan)
    explanation: dict[str, Any] = {
        "raw": round(raw, 4),
        "half_score": topic.half_score,
        "threshold": topic.threshold,
        "required_met": required_met,
        "required_missing": [list(g) for g in missing],
        "body_words": scan.n_words - scan.title_words,
        "evidence": evidence,
    }
    if forced:
        explanation["forced"] = forced
    return TopicMatch(topic.name, score, _verdict(score, topic.threshold, forced), explanation)


def _forced(topic: Topic, topics: TopicSet, scan: ScanResult) -> str | None:
    """``exclude`` or ``include`` when the topic's hard query of that name holds."""
    for which, on in (("exclude", topic.exclude), ("include", topic.include)):
        if on and evaluate(topics.matcher.queries[f"{topic.name}#{which}"], scan):
            return which
    return None


def _verdict(score: float, threshold: float, forced: str | None) -> bool:
    return forced == "include" if forced else score >= threshold


def filter_document(doc: Document, topics: TopicSet) -> FilterResult:
    """Entities and one :class:`TopicMatch` per topic for one document."""
    scan = topics.matcher.scan(
        doc.title + "\n" + doc.text, title_chars=len(doc.title), lead_words=topics.lead_words
    )
    mentions = _entity_mentions(topics, scan)
    hits = _find_entities(topics, mentions, scan)
    doc_vector = vector(scan.folded) if any(t.profile for t in topics.topics) else {}
    matches = tuple(
        _score_topic(t, topics, scan, hits, mentions, doc_vector) for t in topics.topics
    )
    return FilterResult(tuple(hits), matches)


def filter_documents(
    docs: Sequence[Document],
    topics: TopicSet,
    vectors: Given | None = None,
    *,
    use_models: bool = True,
) -> list[FilterResult]:
    """:func:`filter_document` over a batch, in order; then each topic that has a model scores
    the batch with it (the model's probability becomes the score, its threshold the verdict).

    ``vectors`` maps a document's index to an embedding already computed for it, as
    ``(text_key, vector)``; it is used when its key matches the document's text, and the others
    are embedded now (a rescore passes the stored ones).
    """
    results = [filter_document(d, topics) for d in docs]
    models = [t for t in topics.topics if t.model is not None] if use_models else []
    if not models or not docs:
        return results
    texts = [embed_text(d.title, d.text) for d in docs]
    keys = [text_key(t) for t in texts]
    given = vectors or {}
    have = {i: given[i][1] for i in range(len(docs)) if i in given and given[i][0] == keys[i]}
    for i, key in enumerate(keys):
        for t in models:
            if i not in have and t.model is not None and key in t.model.known:
                have[i] = t.model.known[key]
    todo = [i for i in range(len(docs)) if i not in have]
    fresh = embed([texts[i] for i in todo])
    have.update(zip(todo, fresh, strict=True))
    matrix = np.stack([np.asarray(have[i], dtype=np.float32) for i in range(len(docs))])
    for topic in models:
        results = _apply_model(topic, results, matrix)
    return [replace(r, vector=matrix[i], vector_key=keys[i]) for i, r in enumerate(results)]


def _apply_model(topic: Topic, results: list[FilterResult], matrix: Any) -> list[FilterResult]:
    model = topic.model
    assert model is not None
    evidence = [evidence_features(r.match(topic.name).explanation) for r in results]
    probs, why = model.score(evidence, matrix)
    out = []
    for r, p, w in zip(results, probs, why, strict=True):
        rule = r.match(topic.name)
        score = round(float(p), 4)
        explanation = {
            **rule.explanation,
            "rule_score": rule.score,
            "threshold": model.threshold,
            "model": {"version": model.version, **w},
        }
        relevant = _verdict(score, model.threshold, rule.explanation.get("forced"))
        match = TopicMatch(topic.name, score, relevant, explanation)
        out.append(
            replace(r, matches=tuple(match if m.topic == topic.name else m for m in r.matches))
        )
    return out


def describe(match: TopicMatch) -> str:
    """One line a reader can follow: the verdict, then each piece of evidence and its weight."""
    ex = match.explanation
    verdict = "relevant" if match.relevant else "not relevant"
    parts = [f"{verdict}: score {match.score:.2f} (threshold {ex['threshold']:.2f})"]
    for e in ex["evidence"]:
        c = float(e["contribution"])
        if e["kind"] == "similarity":
            parts.append(f"similarity {e['similarity']:.2f} to the examples {c:+.2f}")
            continue
        where = []
        if e.get("in_title"):
            where.append("title")
        if e.get("lead_count"):
            where.append(f"lead x{e['lead_count']}")
        if e.get("body_count"):
            where.append(f"body x{e['body_count']}")
        label = e.get("label") or e["name"]
        what = f"{label} [{e['type']}]" if e["kind"] == "entity" else e["name"]
        terms = f" ({', '.join(e['terms'][:4])})" if e.get("terms") else ""
        parts.append(f"{what}{terms} in {', '.join(where) or 'text'} {c:+.2f}")
    if ex.get("forced"):
        parts[0] += f" ({ex['forced']}d by the topic's {ex['forced']} query)"
    if ex.get("model"):
        return f"{parts[0]}: {describe_model(ex)}"
    for group in ex.get("required_missing", []):
        parts.append(f"none of {', '.join(group)} in the title or lead: score scaled down")
    return "; ".join(parts)


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
    "declared_topics",
    "describe",
    "filter_document",
    "filter_documents",
    "load_topics",
]
