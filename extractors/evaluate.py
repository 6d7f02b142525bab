"""Evaluate a topic filter against a labelled JSONL file.

Each line is a JSON object with ``title`` (string), ``text`` (string), ``label`` (0 or 1) and
optionally ``id`` and ``text_kind`` (e.g. ``feed_summary`` / ``full_text``; default
``unknown``). Blank lines are skipped. A malformed line raises :class:`EvalDataError` naming the
file and line number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsmon.core.errors import ConfigError
from newsmon.extractors.embedding import Given
from newsmon.extractors.topics import Document, TopicSet, filter_documents


class EvalDataError(ConfigError):
    """A labelled file cannot be read or a line in it is malformed."""


@dataclass(frozen=True)
class LabelledItem:
    id: str
    title: str
    text: str
    label: int
    text_kind: str
    lang: str | None = None  # optional fields the trainer reports by (extractors.training)
    borderline: bool = False


@dataclass(frozen=True)
class EvalError:
    """A false positive or false negative, with the filter's explanation."""

    id: str
    title: str
    text_kind: str
    label: int
    predicted: int
    score: float
    explanation: dict[str, Any]

    @property
    def kind(self) -> str:
        return "false_positive" if self.predicted else "false_negative"


@dataclass(frozen=True)
class EvalReport:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    tn: int
    by_kind: dict[str, EvalReport] = field(default_factory=dict)
    errors: list[EvalError] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def report_pairs(pairs: Sequence[tuple[int, int]]) -> EvalReport:
    """Precision, recall, F1 and the confusion counts of ``(label, predicted)`` pairs."""
    tp = sum(1 for y, p in pairs if y and p)
    fp = sum(1 for y, p in pairs if not y and p)
    fn = sum(1 for y, p in pairs if y and not p)
    tn = sum(1 for y, p in pairs if not y and not p)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0
    return EvalReport(precision, recall, f1, tp, fp, fn, tn)


def read_labelled(path: Path) -> list[LabelledItem]:
    """Parse a labelled JSONL file; raises :class:`EvalDataError` on a bad line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EvalDataError(path, "", f"cannot read the file ({e})", "check the path") from e
    items: list[LabelledItem] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key = f"line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalDataError(
                path, key, f"not valid JSON ({e.msg} at column {e.colno})", "one object per line"
            ) from e
        if not isinstance(obj, dict):
            raise EvalDataError(path, key, "must be a JSON object", "write {...} on each line")
        for name in ("title", "text"):
            if not isinstance(obj.get(name), str):
                raise EvalDataError(
                    path,
                    f"{key}: {name}",
                    f"must be a string, got {obj.get(name)!r}",
                    f'add "{name}": "..."',
                )
        label = obj.get("label")
        if label not in (0, 1) or isinstance(label, bool):
            raise EvalDataError(
                path, f"{key}: label", f"must be 0 or 1, got {label!r}", 'set "label": 0 or 1'
            )
        kind = obj.get("text_kind", "unknown")
        if not isinstance(kind, str):
            raise EvalDataError(
                path, f"{key}: text_kind", f"must be a string, got {kind!r}", "drop it or quote it"
            )
        items.append(
            LabelledItem(
                str(obj.get("id", key)),
                obj["title"],
                obj["text"],
                int(label),
                kind,
                str(obj["lang"]) if obj.get("lang") else None,
                bool(obj.get("borderline")),
            )
        )
    return items


def evaluate_items(
    items: Sequence[LabelledItem],
    topics: TopicSet,
    topic: str = "eu_nato_defence",
    vectors: Given | None = None,
) -> EvalReport:
    """Precision/recall of ``topic`` on already-parsed items."""
    if topic not in topics.names:
        raise ConfigError(
            "<topics>", topic, "no such topic", f"use one of {', '.join(topics.names)}"
        )
    results = filter_documents([Document(i.title, i.text) for i in items], topics, vectors)
    pairs: list[tuple[int, int]] = []
    by_kind_pairs: dict[str, list[tuple[int, int]]] = {}
    errors: list[EvalError] = []
    for item, result in zip(items, results, strict=True):
        match = result.match(topic)
        pred = int(match.relevant)
        pairs.append((item.label, pred))
        by_kind_pairs.setdefault(item.text_kind, []).append((item.label, pred))
        if pred != item.label:
            errors.append(
                EvalError(
                    item.id,
                    item.title,
                    item.text_kind,
                    item.label,
                    pred,
                    match.score,
                    match.explanation,
                )
            )
    overall = report_pairs(pairs)
    return EvalReport(
        **overall.summary(),
        by_kind={k: report_pairs(v) for k, v in sorted(by_kind_pairs.items())},
        errors=errors,
    )


def evaluate_labelled(
    rows: Sequence[Mapping[str, Any]], topics: TopicSet, topic: str = "eu_nato_defence"
) -> EvalReport:
    """Like :func:`evaluate_items` for stored articles an analyst labelled (rows of
    :func:`newsmon.warehouse.labels.labelled_articles`: id, title, text, summary, label, text_kind
    and the stored embedding as ``text_key`` and ``vector``, reused when the text matches)."""
    items = [
        LabelledItem(
            str(r["article_id"]), str(r["title"]),
            Document.of(r["title"], r.get("text"), r.get("summary")).text,
            int(r["label"]), str(r["text_kind"]),
        )
        for r in rows
    ]  # fmt: skip
    vectors = {
        i: (r["text_key"], r["vector"])
        for i, r in enumerate(rows)
        if r.get("text_key") and r.get("vector") is not None
    }
    return evaluate_items(items, topics, topic, vectors)


def evaluate_file(path: Path, topics: TopicSet, topic: str = "eu_nato_defence") -> EvalReport:
    """Read ``path`` and evaluate ``topic`` on it."""
    return evaluate_items(read_labelled(path), topics, topic)


__all__ = [
    "EvalDataError",
    "EvalError",
    "EvalReport",
    "LabelledItem",
    "evaluate_file",
    "evaluate_items",
    "evaluate_labelled",
    "read_labelled",
    "report_pairs",
]
