"""Topic filters: keyword queries plus named entities and similarity to examples, per document.

The topics file and its compiled form (:class:`TopicSet`, :func:`load_topics`) are in
:mod:`newsmon.extractors.topic_config`, whose names this module re-exports; this module holds
the documents and results (:class:`Document`, :class:`FilterResult`) and the scoring.

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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from newsmon.extractors.embedding import Given, embed, embed_text, text_key
from newsmon.extractors.query import (
    Region,
    ScanResult,
    Term,
    count_in,
    evaluate,
    match_positions,
)
from newsmon.extractors.relevance import describe_model, evidence_features
from newsmon.extractors.similarity import vector
from newsmon.extractors.topic_config import (
    ENTITY_TYPES,
    Entity,
    Topic,
    TopicQuery,
    TopicSet,
    declared_topics,
    load_topics,
    topic_fingerprint,
)

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
    "topic_fingerprint",
]
