"""A topic's relevance model: a logistic regression learned from labelled news, over the keyword
and entity evidence of :mod:`extractors.topics` and a multilingual embedding of the text.

Features, for one article and one topic:

* **evidence**: one feature per query and per weighted entity of the topic (its strength: title,
  lead and body mentions as :func:`extractors.topics._evidence` counts them, before the hand-set
  weight), the similarity to the baseline examples, whether the required groups are met, and
  the hand-tuned raw score itself. Their weights are learned; the hand-set ones no longer decide.
* **text**: how much the article reads like the relevant labelled examples rather than the
  others: the mean cosine similarity of its e5 embedding (:mod:`extractors.embedding`) to its
  ten closest relevant examples minus that to its ten closest non-relevant ones. Before the
  comparison, the directions that only say *which language* a text is written in are removed
  (:attr:`RelevanceModel.language_basis`, learned from the same news items in 16 languages,
  ``extractors/data/language_probe.jsonl``): the labelled news is English and Polish, and a
  German article should be near the German-language examples' *subjects*, not their language.
  One such column, not the embedding's 384: on 905 items the 384 weights added variance and no
  ranking (docs/topics.md has the comparison), and the closest examples explain the verdict.

The score is ``sigmoid(a * (w . z + b) + c)``: ``z`` the standardised features, ``w`` and ``b``
the regression, ``a`` and ``c`` a Platt calibration fitted on cross-validated predictions, so the
score is a probability that the item is relevant. The threshold is the one that maximised
cross-validated F1 (:mod:`extractors.training`). Nothing here needs scikit-learn: scoring is a
few numpy products, and the artifact is one ``.npz`` file of arrays plus a JSON header (no
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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from newsmon.errors import ConfigError

FORMAT = 2
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
    example_vectors: Array  # (n, DIM) neutralised, L2-normalised, float16 on disk
    examples: tuple[Example, ...]
    metrics: Mapping[str, Any] = field(default_factory=dict)
    encoder: str = ""
    topic_fingerprint: str = ""  # extractors.topics.topic_fingerprint when it was trained
    # raw embeddings of the training texts by text key: a text the model was trained on (the
    # labelled corpus, when `newsmon eval` reads it again) is not embedded a second time
    known: Mapping[str, Array] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to Dask workers, with every batch) without :attr:`known`, a cache for
        re-reading the training texts that a worker has no use for (1.4 MB)."""
        return {**self.__dict__, "known": {}}

    # -- features ------------------------------------------------------------------------------

    def neutralise(self, vectors: Array) -> Array:
        """Embeddings without their language directions, L2-normalised again."""
        v = np.asarray(vectors, dtype=np.float32)
        if len(self.language_basis):
            v = np.asarray(v - (v @ self.language_basis.T) @ self.language_basis, np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.asarray(v / np.maximum(norms, 1e-6), dtype=np.float32)

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

    def save(self, path: Path, training: Mapping[str, Any] | None = None) -> None:
        """Write the artifact (``.npz``): arrays plus one JSON header, no pickle. ``training``
        (from :func:`extractors.training.fit`) is the training set in feature form, kept so
        that a later ``newsmon train`` can refit without the labelled text."""
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
            "train_meta": list(training["meta"]) if training else [],
        }
        extra = (
            {"train_vectors": training["vectors"], "train_evidence": training["evidence"]}
            if training
            else {}
        )
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
            example_vectors=self.example_vectors.astype(np.float16),
            **extra,
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
            arrays = {n: np.asarray(z[n]) for n in ("mean", "scale", "coef", "language_basis")}
            examples_v = np.asarray(z["example_vectors"], dtype=np.float32)
            raw = z["train_vectors"] if "train_vectors" in z.files else np.zeros((0, 0))
            known = {
                str(m["key"]): np.asarray(v, dtype=np.float32)
                for m, v in zip(header.get("train_meta", []), raw, strict=False)
            }
        if header.get("format") != FORMAT:
            raise bad(f"model format {header.get('format')!r}, this newsmon reads {FORMAT}")
        names = tuple(header["evidence_names"])
        if not (
            len(arrays["coef"]) == len(arrays["mean"]) == len(arrays["scale"]) == len(names) + 1
            and len(examples_v) == len(header["examples"])
        ):
            raise bad("inconsistent array shapes")
        return RelevanceModel(
            topic=str(header["topic"]),
            version=str(header["version"]),
            threshold=float(header["threshold"]),
            evidence_names=names,
            mean=arrays["mean"].astype(np.float32),
            scale=arrays["scale"].astype(np.float32),
            coef=arrays["coef"].astype(np.float32),
            intercept=float(header["intercept"]),
            calibration=(float(header["calibration"][0]), float(header["calibration"][1])),
            language_basis=arrays["language_basis"].astype(np.float32),
            example_vectors=examples_v,
            examples=tuple(
                Example(str(e[0]), str(e[1]), int(e[2]), float(e[3]) if len(e) > 3 else 1.0)
                for e in header["examples"]
            ),
            metrics=header.get("metrics", {}),
            encoder=str(header.get("encoder", "")),
            topic_fingerprint=str(header.get("topic_fingerprint", "")),
            known=known,
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


def load_training(path: Path) -> dict[str, Any] | None:
    """The training set stored with a model (see :meth:`RelevanceModel.save`), or None."""
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z["header"]).decode())
        if "train_vectors" not in z.files:
            return None
        return {
            "meta": header.get("train_meta", []),
            "vectors": np.asarray(z["train_vectors"], dtype=np.float32),
            "evidence": np.asarray(z["train_evidence"], dtype=np.float32),
        }


def evidence_features(explanation: Mapping[str, Any]) -> dict[str, float]:
    """A rule match's explanation (:func:`extractors.topics._score_topic`) as model features."""
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
    "describe_model",
    "evidence_features",
    "knn_margin",
    "load_model",
    "load_training",
]
