"""Fitting a topic's relevance model (:mod:`newsmon.extractors.relevance`) and measuring it by
k-fold cross-validation. Uses scikit-learn (imported here only: scoring does not need it).

The training set is whatever labelled items are given, each already turned into features: the
evidence of the keyword and entity filter (computed from the text with the current topics file)
and the text's embedding. A model keeps its own training set in feature form (evidence,
embedding, label, language, kind), so ``newsmon train`` can refit from the shipped model plus
the analysts' labels on a machine that holds no labelled text at all; given the labelled files
again (``--data``), it recomputes the evidence from their text and reuses every embedding whose
text has not changed.

Method (docs/topics.md has the figures):

1. Standardise the features, fit an L2 logistic regression; ``C`` is picked from a small grid
   by cross-validated log-loss (the same stratified folds for every candidate).
2. Fit a Platt calibration on the out-of-fold log-odds of the chosen ``C``: the score becomes a
   probability.
3. The threshold maximises out-of-fold F1 on the items not marked borderline: the rubric's
   borderline items are those "reasonable annotators could disagree" on, so their labels say
   little about where the line is. (Over all items the best threshold is lower, 0.32 against
   0.4-0.5, and buys recall on disputed items with precision on clear ones.)
4. Report the out-of-fold precision, recall and F1 at that threshold: overall, without the
   borderline items, per language and per text kind. Then fit on everything.

``C``, the calibration and the threshold are chosen on the same folds that are reported, which
flatters the figures slightly; on 900 items with three choices the optimism is small.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from newsmon.core.errors import ConfigError
from newsmon.extractors.embedding import DIM, ENCODER, Vectors, embed, embed_text, text_key
from newsmon.extractors.evaluate import read_labelled, report_pairs
from newsmon.extractors.relevance import (
    Example,
    RelevanceModel,
    TrainingSet,
    evidence_features,
    knn_margin,
)
from newsmon.extractors.topics import Document, TopicSet, filter_documents

C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
FOLDS = 5
SEED = 0
PROBE = "language_probe.jsonl"


@dataclass(frozen=True)
class TrainingItem:
    """One labelled item in feature form."""

    id: str
    title: str
    label: int
    vector: Vectors  # raw embedding (DIM,)
    key: str  # text_key of the embedded text
    evidence: Mapping[str, float]
    lang: str = "unknown"
    text_kind: str = "unknown"
    borderline: bool = False
    source: str = "shipped"  # shipped | analyst
    weight: float = 1.0


@dataclass(frozen=True)
class Figures:
    n: int
    positives: int
    precision: float
    recall: float
    f1: float
    false_positives: int = 0  # what a set with no relevant item can say

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "positives": self.positives,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "fp": self.false_positives,
        }


@dataclass(frozen=True)
class CVReport:
    folds: int
    threshold: float
    c: float
    overall: Figures
    not_borderline: Figures
    by_language: dict[str, Figures] = field(default_factory=dict)
    by_kind: dict[str, Figures] = field(default_factory=dict)
    by_source: dict[str, Figures] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "cv_folds": self.folds,
            "cv_precision": self.overall.precision,
            "cv_recall": self.overall.recall,
            "cv_f1": self.overall.f1,
            "cv_f1_not_borderline": self.not_borderline.f1,
            "threshold": self.threshold,
            "C": self.c,
            "items": self.overall.n,
            "positives": self.overall.positives,
            "by_language": {k: v.as_dict() for k, v in self.by_language.items()},
            "by_kind": {k: v.as_dict() for k, v in self.by_kind.items()},
            "by_source": {k: v.as_dict() for k, v in self.by_source.items()},
        }


# --------------------------------------------------------------------------- inputs


def evidence_of(docs: Sequence[Document], topics: TopicSet, topic: str) -> list[dict[str, float]]:
    """The keyword and entity filter's evidence for ``topic``, as features, per document."""
    results = filter_documents(docs, topics, use_models=False)
    return [evidence_features(r.match(topic).explanation) for r in results]


def embed_cached(texts: Sequence[str], cache: Mapping[str, Vectors]) -> tuple[Vectors, list[str]]:
    """Embeddings of prepared texts, computing only those whose key is not in ``cache``."""
    keys = [text_key(t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
    fresh = dict(zip([k for k, _ in missing], embed([t for _, t in missing]), strict=True))
    vectors = np.stack([cache[k] if k in cache else fresh[k] for k in keys]) if keys else None
    return (vectors if vectors is not None else np.zeros((0, DIM), np.float32)), keys


def items_from_model(model: RelevanceModel) -> list[TrainingItem]:
    """The shipped part of the training set a model was fitted on (not its analysts' labels,
    which the warehouse holds)."""
    if model.training is None:
        return []
    t = model.training
    names = model.evidence_names
    return [
        TrainingItem(
            id=ex.id,
            title=ex.title,
            label=ex.label,
            vector=t.vectors[i],
            key=m["key"],
            evidence={n: float(t.evidence[i, j]) for j, n in enumerate(names) if t.evidence[i, j]},
            lang=m["lang"],
            text_kind=m["kind"],
            borderline=bool(m["borderline"]),
            source=m["source"],
            weight=ex.weight,
        )
        for i, (ex, m) in enumerate(zip(model.examples, t.meta, strict=True))
        if m["source"] == "shipped"
    ]


def read_items(path: Path) -> list[dict[str, Any]]:
    """Labelled JSONL (the format of ``newsmon eval``; ``lang`` and ``borderline`` kept) as
    rows for :func:`items_from_rows`; a bad line is an EvalDataError naming file and line."""
    return [dataclasses.asdict(item) for item in read_labelled(path)]


def items_from_rows(
    rows: Sequence[Mapping[str, Any]],
    topics: TopicSet,
    topic: str,
    cache: Mapping[str, Vectors],
    *,
    source: str = "shipped",
    weight: float = 1.0,
) -> list[TrainingItem]:
    """Feature form of labelled rows (id, title, text, label and optional lang, text_kind,
    borderline); embeddings come from ``cache`` where their text is unchanged."""
    from newsmon.extractors.language import detect_language

    docs = [Document.of(r["title"], r.get("text"), r.get("summary")) for r in rows]
    evidence = evidence_of(docs, topics, topic)
    texts = [embed_text(d.title, d.text) for d in docs]
    vectors, keys = embed_cached(texts, cache)
    return [
        TrainingItem(
            id=str(r["id"]),
            title=str(r["title"])[:160],
            label=int(r["label"]),
            vector=vectors[i],
            key=keys[i],
            evidence=evidence[i],
            lang=str(r.get("lang") or detect_language(f"{d.title}\n{d.text}") or "unknown"),
            text_kind=str(r.get("text_kind") or "unknown"),
            borderline=bool(r.get("borderline", False)),
            source=source,
            weight=weight,
        )
        for i, (r, d) in enumerate(zip(rows, docs, strict=True))
    ]


def probe_texts() -> list[tuple[str, str]]:
    """(language, text) of the parallel news items that define the language directions."""
    text = resources.files("extractors").joinpath("data", PROBE).read_text(encoding="utf-8")
    return [(o["lang"], o["text"]) for o in map(json.loads, text.splitlines()) if o]


def language_basis(samples: Sequence[tuple[str, str]], rank: int | None = None) -> Vectors:
    """Orthonormal directions that separate languages on the same content.

    Each language's mean embedding over the same items minus the mean of all: on parallel text
    the content cancels and what is left says only which language it is. The top singular
    vectors of those differences (all of them by default) are removed from every embedding.
    """
    langs = sorted({lang for lang, _ in samples})
    vectors = embed([t for _, t in samples])
    means = np.stack(
        [
            vectors[[i for i, (lang, _) in enumerate(samples) if lang == g]].mean(axis=0)
            for g in langs
        ]
    )
    diffs = means - means.mean(axis=0)
    _, s, vt = np.linalg.svd(diffs, full_matrices=False)
    k = rank if rank is not None else int((s > 1e-6).sum())
    return np.asarray(vt[:k], dtype=np.float32)


# --------------------------------------------------------------------------- fitting


def _figures(y: np.ndarray, p: np.ndarray) -> Figures:
    r = report_pairs(list(zip(y.tolist(), p.tolist(), strict=True)))
    return Figures(r.tp + r.fp + r.fn + r.tn, r.tp + r.fn, r.precision, r.recall, r.f1, r.fp)


def _inputs(items: Sequence[TrainingItem], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Evidence matrix and raw embeddings, the embeddings at the precision the artifact stores
    them, so that a refit from the artifact is the same fit."""
    vectors = np.stack([i.vector for i in items]).astype(np.float16).astype(np.float32)
    evidence = np.array([[i.evidence.get(n, 0.0) for n in names] for i in items], np.float32)
    return evidence.reshape(len(items), len(names)), vectors


def _with_text(
    evidence: np.ndarray,
    neutral: np.ndarray,
    ref: np.ndarray,
    y_ref: np.ndarray,
    w_ref: np.ndarray,
    same: bool,
) -> np.ndarray:
    counts = np.maximum(1, np.round(w_ref)).astype(np.int64)
    text = knn_margin(neutral, ref, y_ref, counts=counts, exclude_self=same)
    return np.hstack([evidence, text[:, None]])


def _by(
    items: Sequence[TrainingItem], attr: str, y: np.ndarray, p: np.ndarray
) -> dict[str, Figures]:
    groups: dict[str, list[int]] = {}
    for n, item in enumerate(items):
        groups.setdefault(str(getattr(item, attr)), []).append(n)
    return {g: _figures(y[ix], p[ix]) for g, ix in sorted(groups.items())}


def fit(
    items: Sequence[TrainingItem],
    topic: str,
    basis: Vectors,
    *,
    folds: int = FOLDS,
    seed: int = SEED,
    log: Callable[[str], None] | None = None,
    fingerprint: str = "",
) -> tuple[RelevanceModel, CVReport]:
    """Fit a model on ``items`` and report its cross-validated figures (module docstring).
    The model carries its training set in feature form (:class:`TrainingSet`)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    y = np.array([i.label for i in items])
    if len(set(y.tolist())) < 2 or min(int(y.sum()), int(len(y) - y.sum())) < folds:
        raise ConfigError(
            "<training data>",
            topic,
            f"needs at least {folds} relevant and {folds} not relevant items, "
            f"got {int(y.sum())} and {int(len(y) - y.sum())}",
            "label more articles with `newsmon label` or pass --data FILE",
        )
    names = tuple(sorted({n for i in items for n in i.evidence}))
    shell = _shell(topic, names, basis)
    ev, vectors = _inputs(items, names)
    neutral = shell.neutralise(vectors)
    w = np.array([i.weight for i in items])
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(ev, y))
    n_ev = len(names)
    # the text column of a fold's rows compares them with that fold's training rows only
    fold_x = [
        (
            _with_text(ev[train], neutral[train], neutral[train], y[train], w[train], True),
            _with_text(ev[test], neutral[test], neutral[train], y[train], w[train], False),
        )
        for train, test in splits
    ]

    def oof_log_odds(c: float) -> np.ndarray:
        out = np.zeros(len(y))
        for (train, test), (x_train, x_test) in zip(splits, fold_x, strict=True):
            mean, scale = _standardiser(x_train, n_ev)
            lr = LogisticRegression(C=c, max_iter=5000)
            lr.fit((x_train - mean) / scale, y[train], sample_weight=w[train])
            out[test] = lr.decision_function((x_test - mean) / scale)
        return out

    best: tuple[float, float, np.ndarray] | None = None
    for c in C_GRID:
        z = oof_log_odds(c)
        p = 1 / (1 + np.exp(-z))
        loss = float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
        if log:
            log(f"  C={c:<6} cross-validated log-loss {loss:.4f}")
        if best is None or loss < best[0]:
            best = (loss, c, z)
    assert best is not None
    _, c, z = best
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(z.reshape(-1, 1), y)
    a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    prob = 1 / (1 + np.exp(-(a * z + b)))
    thresholds = np.round(np.arange(0.2, 0.81, 0.01), 2)
    clear = np.array([not i.borderline for i in items])
    if clear.sum() < len(items) / 2 or len(set(y[clear].tolist())) < 2:
        clear[:] = True
    f1s = np.array([_figures(y[clear], (prob[clear] >= t).astype(int)).f1 for t in thresholds])
    threshold = float(thresholds[int(np.argmax(f1s))])
    pred = (prob >= threshold).astype(int)
    not_bl = np.array([not i.borderline for i in items])
    report = CVReport(
        folds=folds,
        threshold=threshold,
        c=c,
        overall=_figures(y, pred),
        not_borderline=_figures(y[not_bl], pred[not_bl]),
        by_language=_by(items, "lang", y, pred),
        by_kind=_by(items, "text_kind", y, pred),
        by_source=_by(items, "source", y, pred),
    )
    x = _with_text(ev, neutral, neutral, y, w, True)
    mean, scale = _standardiser(x, n_ev)
    lr = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y, sample_weight=w)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    model = replace(
        shell,
        version=f"{topic}@{stamp}",
        threshold=threshold,
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        coef=lr.coef_[0].astype(np.float32),
        intercept=float(lr.intercept_[0]),
        calibration=(a, b),
        example_vectors=neutral,
        examples=tuple(Example(i.id, i.title, i.label, i.weight) for i in items),
        metrics=report.summary(),
        topic_fingerprint=fingerprint,
        training=TrainingSet(
            meta=tuple(
                {
                    "key": i.key,
                    "lang": i.lang,
                    "kind": i.text_kind,
                    "borderline": i.borderline,
                    "source": i.source,
                }
                for i in items
            ),
            vectors=vectors,
            evidence=ev,
        ),
    )
    return model, report


def _standardiser(x: np.ndarray, n_evidence: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale per column. The text column gets unit variance; evidence columns are
    divided by at least 1: a term or entity seen in a handful of items would otherwise be
    blown up to unit variance, and the regression would hang a large weight on a few examples
    (one analyst's article about Kaja Kallas made every Kallas story less relevant)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[:n_evidence] = np.maximum(scale[:n_evidence], 1.0)
    scale[n_evidence:] = np.where(scale[n_evidence:] > 0, scale[n_evidence:], 1.0)  # text
    return mean, scale


def _shell(topic: str, names: tuple[str, ...], basis: Vectors) -> RelevanceModel:
    width = len(names) + 1
    return RelevanceModel(
        topic=topic,
        version="",
        threshold=0.5,
        evidence_names=names,
        mean=np.zeros(width, np.float32),
        scale=np.ones(width, np.float32),
        coef=np.zeros(width, np.float32),
        intercept=0.0,
        calibration=(1.0, 0.0),
        language_basis=basis,
        example_vectors=np.zeros((0, DIM), np.float32),
        examples=(),
        encoder=ENCODER,
    )


__all__ = [
    "CVReport",
    "Figures",
    "TrainingItem",
    "embed_cached",
    "evidence_of",
    "fit",
    "items_from_model",
    "items_from_rows",
    "language_basis",
    "probe_texts",
    "read_items",
]
