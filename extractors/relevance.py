"""A topic's relevance model: a logistic regression learned from labelled news, over the keyword
and entity evidence of :mod:`newsmon.extractors.topics` and a multilingual embedding of the text.

Features, for one article and one topic:

* **evidence**: one feature per query and per weighted entity of the topic (its strength: title,
  lead and body mentions as :func:`newsmon.extractors.topics._evidence` counts them, before the
  hand-set weight), the similarity to the baseline examples, whether the required groups are met,
  and the hand-tuned raw score itself. Their weights are learned; the hand-set ones no longer
  decide.
* **text**: how much the article reads like the relevant labelled examples rather than the
  others: the mean cosine similarity of its e5 embedding (:mod:`newsmon.extractors.embedding`) to
  its ten closest relevant examples minus that to its ten closest non-relevant ones. Before the
  comparison, the directions that only say *which language* a text is written in are removed
  (:attr:`RelevanceModel.language_basis`, learned from the same news items in 16 languages,
  ``extractors/data/language_probe.jsonl``): the labelled news is English and Polish, and a
  German article should be near the German-language examples' *subjects*, not their language.
  One such column, not the embedding's 384: on 905 items the 384 weights added variance and no
  ranking (docs/topics.md has the comparison), and the closest examples explain the verdict.

The score is ``sigmoid(a * (w . z + b) + c)``: ``z`` the standardised features, ``w`` and ``b``
the regression, ``a`` and ``c`` a Platt calibration fitted on cross-validated predictions, so the
score is a probability that the item is relevant. The threshold is the one that maximised
cross-validated F1 (:mod:`newsmon.extractors.training`). Nothing here needs scikit-learn: scoring
is a few numpy products, and the artifact is one ``.npz`` file of arrays plus a JSON header (no
pickle: loading a model runs no code).

The explanation of a verdict lists each feature's contribution to the log-odds (positive pushes
towards relevant), the text's contribution as one line, and the closest labelled examples.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from newsmon.core.errors import ConfigError

FORMAT = 3
TEXT_FEATURE = "text"  # the name the closest examples' column is shown under
NEAREST = 3
K = 10  # neighbours of each label that the text feature averages over

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Example:
    """A labelled item the model was trained on, as explanations cite it."""

    id: str
    title: str
    label: int
    weight: float = 1.0  # an analyst's label counts as several (see extractors.training)


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """The items a model was fitted on, in feature form (no text): kept in the artifact so that
    ``newsmon train`` can refit without the labelled files, and the explanations can cite the
    closest examples. Row ``i`` is :attr:`RelevanceModel.examples` ``[i]``."""

    meta: tuple[Mapping[str, Any], ...]  # key (extractors.embedding.text_key), lang, kind, ...
    vectors: Array  # raw embeddings (n, DIM), at float16 precision (as stored)
    evidence: Array  # (n, len(evidence_names)): the evidence features when it was trained


@dataclass(frozen=True, eq=False)
class RelevanceModel:
    """A trained model for one topic (see the module docstring). Picklable."""

    topic: str
    version: str
    threshold: float
    evidence_names: tuple[str, ...]
    mean: Array  # standardisation of [evidence..., embedding...]
    scale: Array
    coef: Array
    intercept: float
    calibration: tuple[float, float]  # Platt (a, c) on the regression's log-odds
    language_basis: Array  # (k, DIM) orthonormal rows removed from every embedding
    example_vectors: Array  # (n, DIM) the training vectors, neutralised (derived, not stored)
    examples: tuple[Example, ...]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    encoder: str = ""
    topic_fingerprint: str = ""  # extractors.topics.topic_fingerprint when it was trained
    training: TrainingSet | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to Dask workers, with every batch) without the training set's raw vectors
        and evidence, which only training and re-reading the training texts use (0.7 MB)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("training", "known")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, training=None)

    @cached_property
    def known(self) -> Mapping[str, Array]:
        """Raw embeddings of the training texts by text key: a text the model was trained on
        (the labelled corpus, when `newsmon eval` reads it again) is not embedded again."""
        if self.training is None:
            return {}
        keys = (str(m["key"]) for m in self.training.meta)
        return dict(zip(keys, self.training.vectors, strict=True))

    # -- features ------------------------------------------------------------------------------

    def neutralise(self, vectors: Array) -> Array:
        """Embeddings without their language directions, L2-normalised again."""
        return neutralise(vectors, self.language_basis)

    @property
    def example_labels(self) -> npt.NDArray[np.int8]:
        return np.array([e.label for e in self.examples], dtype=np.int8)

    @property
    def example_counts(self) -> npt.NDArray[np.int64]:
        return np.array([max(1, round(e.weight)) for e in self.examples], dtype=np.int64)

    def features(self, evidence: Sequence[Mapping[str, float]], neutral: Array) -> Array:
        """The feature matrix: evidence columns in :attr:`evidence_names` order, then the text
        column (``neutral``: embeddings already passed through :meth:`neutralise`)."""
        ev = np.array(
            [[e.get(n, 0.0) for n in self.evidence_names] for e in evidence], dtype=np.float32
        ).reshape(len(evidence), len(self.evidence_names))
        text = knn_margin(
            neutral, self.example_vectors, self.example_labels, counts=self.example_counts
        )
        return np.hstack([ev, text[:, None]]).astype(np.float32)

    # -- scoring -------------------------------------------------------------------------------

    def log_odds(self, x: Array) -> npt.NDArray[np.float64]:
        z = (x - self.mean) / self.scale
        return np.asarray(z @ self.coef + self.intercept, dtype=np.float64)

    def probability(self, x: Array) -> npt.NDArray[np.float64]:
        a, c = self.calibration
        return np.asarray(1.0 / (1.0 + np.exp(-(a * self.log_odds(x) + c))), dtype=np.float64)

    def score(
        self, evidence: Sequence[Mapping[str, float]], vectors: Array
    ) -> tuple[npt.NDArray[np.float64], list[dict[str, Any]]]:
        """Probabilities and explanations for raw embeddings and their evidence."""
        neutral = self.neutralise(vectors)
        x = self.features(evidence, neutral)
        return self.probability(x), self.explain(x, neutral)

    def explain(self, x: Array, neutral: Array) -> list[dict[str, Any]]:
        """Per article: contributions to the calibrated log-odds and the closest examples."""
        a, _ = self.calibration
        z = (x - self.mean) / self.scale
        parts = z * self.coef * a
        names = (*self.evidence_names, TEXT_FEATURE)
        sims = neutral @ self.example_vectors.T if len(self.examples) else None
        out = []
        for i in range(len(x)):
            contrib = {
                name: round(float(parts[i, j]), 3)
                for j, name in enumerate(names)
                if abs(parts[i, j]) >= 0.05 or name == TEXT_FEATURE
            }
            ranked = sorted(contrib.items(), key=lambda kv: -abs(kv[1]))
            nearest: list[dict[str, Any]] = []
            if sims is not None:
                for k in np.argsort(-sims[i])[:NEAREST]:
                    ex = self.examples[int(k)]
                    nearest.append(
                        {
                            "id": ex.id,
                            "title": ex.title,
                            "label": ex.label,
                            "similarity": round(float(sims[i, k]), 3),
                        }
                    )
            out.append({"contributions": dict(ranked), "nearest": nearest})
        return out

    # -- storage -------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the artifact (``.npz``): arrays plus one JSON header, no pickle. The training
        set is required: the example vectors are derived from it when the model is read."""
        if self.training is None:
            raise ValueError("a model is saved with its training set")
        header = {
            "format": FORMAT,
            "topic": self.topic,
            "version": self.version,
            "encoder": self.encoder,
            "threshold": self.threshold,
            "intercept": self.intercept,
            "calibration": list(self.calibration),
            "evidence_names": list(self.evidence_names),
            "examples": [[e.id, e.title, e.label, e.weight] for e in self.examples],
            "metrics": dict(self.metrics),
            "topic_fingerprint": self.topic_fingerprint,
            "train_meta": [dict(m) for m in self.training.meta],
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            header=np.frombuffer(json.dumps(header, ensure_ascii=False).encode(), dtype=np.uint8),
            mean=self.mean,
            scale=self.scale,
            coef=self.coef,
            language_basis=self.language_basis,
            train_vectors=self.training.vectors.astype(np.float16),
            train_evidence=self.training.evidence,
        )
        tmp.replace(path)


def load_model(path: Path, *, source: str = "", key: str = "model") -> RelevanceModel:
    """Read an artifact written by :meth:`RelevanceModel.save`; a bad one is a ConfigError
    naming ``source`` (the topics file) and ``key``."""
    where = source or str(path)

    def bad(problem: str) -> ConfigError:
        return ConfigError(
            where,
            key,
            f"{problem} ({path})",
            "train it with `newsmon train`, or remove the key to use the keyword filter alone",
        )

    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"]).decode())
            if header.get("format") != FORMAT:
                raise bad(f"model format {header.get('format')!r}, this newsmon reads {FORMAT}")
            arrays = {
                n: np.asarray(z[n], dtype=np.float32)
                for n in ("mean", "scale", "coef", "language_basis", "train_vectors")
            }
            training = TrainingSet(
                tuple(header["train_meta"]),
                arrays["train_vectors"],
                np.asarray(z["train_evidence"], dtype=np.float32),
            )
        names = tuple(header["evidence_names"])
        n = len(header["examples"])
        if not (
            len(arrays["coef"]) == len(arrays["mean"]) == len(arrays["scale"]) == len(names) + 1
            and len(training.meta) == len(training.vectors) == len(training.evidence) == n
        ):
            raise bad("inconsistent array shapes")
        basis = arrays["language_basis"]
        return RelevanceModel(
            topic=str(header["topic"]),
            version=str(header["version"]),
            threshold=float(header["threshold"]),
            evidence_names=names,
            mean=arrays["mean"],
            scale=arrays["scale"],
            coef=arrays["coef"],
            intercept=float(header["intercept"]),
            calibration=(float(header["calibration"][0]), float(header["calibration"][1])),
            language_basis=basis,
            example_vectors=neutralise(training.vectors, basis),
            examples=tuple(
                Example(str(i), str(t), int(lab), float(w)) for i, t, lab, w in header["examples"]
            ),
            metrics=header.get("metrics", {}),
            encoder=str(header.get("encoder", "")),
            topic_fingerprint=str(header.get("topic_fingerprint", "")),
            training=training,
        )
    except FileNotFoundError as e:
        raise bad("no such model file") from e
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile,
            zlib.error) as e:  # fmt: skip
        raise bad(f"not a newsmon model file ({type(e).__name__})") from e


def knn_margin(
    query: Array,
    reference: Array,
    labels: npt.NDArray[Any],
    *,
    counts: npt.NDArray[Any] | None = None,
    exclude_self: bool = False,
) -> npt.NDArray[np.float32]:
    """Mean cosine of each query row to its :data:`K` most similar relevant reference rows
    minus that to its K most similar non-relevant ones (rows L2-normalised). ``counts``: how
    many neighbours each reference row stands for (an analyst's label counts several times).
    With ``exclude_self`` the query is the reference itself and a row is not its own neighbour.
    """
    sims = np.asarray(query, dtype=np.float32) @ np.asarray(reference, dtype=np.float32).T
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    labels = np.asarray(labels)
    if counts is not None and len(counts) and int(np.max(counts)) > 1:
        sims = np.repeat(sims, counts, axis=1)
        labels = np.repeat(labels, counts)
    out = np.zeros(len(sims), dtype=np.float32)
    for label, sign in ((1, 1.0), (0, -1.0)):
        cols = sims[:, labels == label]
        k = min(K, cols.shape[1] - (1 if exclude_self else 0))
        if k <= 0:
            continue
        top = -np.partition(-cols, k - 1, axis=1)[:, :k]
        out += sign * np.where(np.isfinite(top), top, 0.0).mean(axis=1)
    return out


def neutralise(vectors: Array, basis: Array) -> Array:
    """``vectors`` without the directions in ``basis`` (orthonormal rows), L2-normalised."""
    v = np.asarray(vectors, dtype=np.float32)
    if len(basis):
        v = np.asarray(v - (v @ basis.T) @ basis, np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(v / np.maximum(norms, 1e-6), dtype=np.float32)


def evidence_features(explanation: Mapping[str, Any]) -> dict[str, float]:
    """A rule match's explanation (:func:`newsmon.extractors.topics._score_topic`) as model
    features."""
    out: dict[str, float] = {
        "rule:raw": float(explanation.get("raw", 0.0)),
        "rule:required_met": 1.0 if explanation.get("required_met") else 0.0,
    }
    for e in explanation.get("evidence", ()):
        w = float(e.get("weight") or 0.0)
        if e["kind"] == "similarity":
            out["similarity:examples"] = float(e["contribution"]) / w if w else 0.0
        elif w:
            out[f"{e['kind']}:{e['name']}"] = float(e["contribution"]) / w
    return out


def describe_model(explanation: Mapping[str, Any], limit: int = 5) -> str:
    """The model part of an explanation as one line: the strongest contributions."""
    model = explanation.get("model") or {}
    parts = []
    for name, value in list(model.get("contributions", {}).items())[:limit]:
        shown = "text (closest labelled examples)" if name == TEXT_FEATURE else name
        parts.append(f"{shown} {float(value):+.2f}")
    nearest = model.get("nearest") or []
    if nearest:
        n = nearest[0]
        verdict = "relevant" if n["label"] else "not relevant"
        parts.append(f"closest example ({verdict}, {n['similarity']:.2f}): {n['title'][:80]}")
    return "; ".join(parts)


__all__ = [
    "TEXT_FEATURE",
    "Example",
    "RelevanceModel",
    "TrainingSet",
    "describe_model",
    "evidence_features",
    "knn_margin",
    "load_model",
    "neutralise",
]
