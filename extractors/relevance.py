"""A topic's relevance model: a logistic regression learned from labelled news, over the keyword
and entity evidence of :mod:`extractors.topics` and a multilingual embedding of the text.

Features, for one article and one topic:

* **evidence**: one feature per query and per weighted entity of the topic (its strength: title,
  lead and body mentions as :func:`extractors.topics._evidence` counts them, before the hand-set
  weight), the similarity to the baseline examples, whether the required groups are met, and
  the hand-tuned raw score itself. Their weights are learned; the hand-set ones no longer decide.
* **text**: the article's e5 embedding (:mod:`extractors.embedding`) with the directions that
  only say *which language* it is written in removed (:attr:`RelevanceModel.language_basis`,
  learned from the same news items in 16 languages, ``extractors/data/language_probe.jsonl``).
  The labelled news is English and Polish; without this a model learns "German or Spanish text
  is never relevant" from the German and Spanish negatives, and reads French news worse than
  English.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from newsmon.errors import ConfigError

FORMAT = 1
TEXT_FEATURE = "text"  # the name the embedding's summed contribution is shown under
NEAREST = 3

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Example:
    """A labelled item the model was trained on, as explanations cite it."""

    id: str
    title: str
    label: int


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
    # raw embeddings of the training texts by text key: a text the model was trained on (the
    # labelled corpus, when `newsmon eval` reads it again) is not embedded a second time
    known: Mapping[str, Array] = field(default_factory=dict, repr=False)

    # -- features ------------------------------------------------------------------------------

    def neutralise(self, vectors: Array) -> Array:
        """Embeddings without their language directions, L2-normalised again."""
        v = np.asarray(vectors, dtype=np.float32)
        if len(self.language_basis):
            v = v - (v @ self.language_basis.T) @ self.language_basis
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.asarray(v / np.maximum(norms, 1e-6), dtype=np.float32)

    def features(self, evidence: Sequence[Mapping[str, float]], vectors: Array) -> Array:
        """The feature matrix: evidence columns in :attr:`evidence_names` order, then text."""
        ev = np.array(
            [[e.get(n, 0.0) for n in self.evidence_names] for e in evidence], dtype=np.float32
        ).reshape(len(evidence), len(self.evidence_names))
        return np.hstack([ev, self.neutralise(vectors)])

    # -- scoring -------------------------------------------------------------------------------

    def log_odds(self, x: Array) -> npt.NDArray[np.float64]:
        z = (x - self.mean) / self.scale
        return np.asarray(z @ self.coef + self.intercept, dtype=np.float64)

    def probability(self, x: Array) -> npt.NDArray[np.float64]:
        a, c = self.calibration
        return np.asarray(1.0 / (1.0 + np.exp(-(a * self.log_odds(x) + c))), dtype=np.float64)

    def explain(self, x: Array, neutral: Array) -> list[dict[str, Any]]:
        """Per article: contributions to the calibrated log-odds and the closest examples."""
        a, _ = self.calibration
        z = (x - self.mean) / self.scale
        parts = z * self.coef * a
        n_ev = len(self.evidence_names)
        sims = neutral @ self.example_vectors.astype(np.float32).T if len(self.examples) else None
        out = []
        for i in range(len(x)):
            contrib = {
                name: round(float(parts[i, j]), 3)
                for j, name in enumerate(self.evidence_names)
                if abs(parts[i, j]) >= 0.05
            }
            contrib[TEXT_FEATURE] = round(float(parts[i, n_ev:].sum()), 3)
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
            "examples": [[e.id, e.title, e.label] for e in self.examples],
            "metrics": dict(self.metrics),
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
    except FileNotFoundError as e:
        raise bad("no such model file") from e
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise bad(f"not a newsmon model file: {e}") from e
    if header.get("format") != FORMAT:
        raise bad(f"model format {header.get('format')!r}, this newsmon reads {FORMAT}")
    names = tuple(header["evidence_names"])
    width = len(names) + arrays["language_basis"].shape[1] if arrays["language_basis"].size else 0
    if arrays["coef"].shape[0] != arrays["mean"].shape[0] or (
        width and width != len(arrays["coef"])
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
        examples=tuple(Example(str(i), str(t), int(lab)) for i, t, lab in header["examples"]),
        metrics=header.get("metrics", {}),
        encoder=str(header.get("encoder", "")),
        known=known,
    )


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
        shown = "text (multilingual embedding)" if name == TEXT_FEATURE else name
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
    "load_model",
    "load_training",
]
