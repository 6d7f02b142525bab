"""Topic configuration: the compiled topics and entities (:class:`TopicSet`) and the reading
and validation of the topics file that declares them (:func:`load_topics`).

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

:mod:`newsmon.extractors.topics` scores documents against a :class:`TopicSet` (and re-exports
the names of this module).
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from newsmon.core.errors import ConfigError
from newsmon.extractors.query import Matcher, Term, parse_query
from newsmon.extractors.relevance import RelevanceModel, load_model
from newsmon.extractors.similarity import Profile, load_examples

ENTITY_TYPES = ("org", "person", "programme", "place")


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


__all__ = [
    "ENTITY_TYPES",
    "Entity",
    "Topic",
    "TopicQuery",
    "TopicSet",
    "declared_topics",
    "load_topics",
    "topic_fingerprint",
]
