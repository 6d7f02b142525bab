"""Teaching a topic: ``newsmon train`` and ``newsmon label``, wired from the stages
(:mod:`newsmon.extractors.training`) and the warehouse (:mod:`newsmon.warehouse.labels`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsmon.core.errors import ConfigError
from newsmon.extractors.relevance import RelevanceModel, load_model
from newsmon.extractors.topics import TopicSet, load_topics
from newsmon.extractors.training import (
    CVReport,
    TrainingItem,
    fit,
    items_from_model,
    items_from_rows,
    language_basis,
    probe_texts,
    read_items,
)

LABEL_WEIGHT = 3.0  # an analyst's verdict counts as much as three shipped items (docs/topics.md)


@dataclass(frozen=True)
class Trained:
    model: RelevanceModel
    report: CVReport
    path: Path
    shipped: int
    analyst: int
    configured: bool  # the topics file names this path as the topic's model


def check_topic(topics: TopicSet | Sequence[str], topic: str, source: str | Path) -> None:
    """An unknown topic is a ConfigError with a "did you mean"."""
    names = tuple(topics.names if isinstance(topics, TopicSet) else topics)
    if topic in names:
        return
    close = difflib.get_close_matches(topic, names, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(names)}"
    raise ConfigError(source, f"topics.{topic}", "no such topic", hint)


def train(
    topics_file: Path,
    topic: str,
    *,
    data: Sequence[Path] = (),
    db: Path | None = None,
    output: Path | None = None,
    new_basis: bool = False,
    label_weight: float = LABEL_WEIGHT,
    log: Callable[[str], None] = lambda _: None,
) -> Trained:
    """Fit ``topic``'s model from the labelled files in ``data`` (else the training set stored
    with its current model) plus the analysts' labels in ``db``, and write it to ``output``
    (default: the topic's ``model`` path in the topics file)."""
    topics = load_topics(topics_file, models=False)  # a broken model is what train replaces
    check_topic(topics, topic, topics_file)
    current_path = topics.topic(topic).model_file
    current = _current(topics_file, topic, current_path, log)
    target = Path(output or current_path or Path(topics_file).parent / "models" / f"{topic}.npz")
    _check_writable(target)

    if data:
        rows = [row for path in data for row in read_items(path)]
        log(f"{len(rows)} labelled items from {len(data)} file(s)")
        # texts the current model was trained on are not embedded again
        items = items_from_rows(rows, topics, topic, current.known if current else {})
    elif current is not None and current.training is not None:
        fingerprint = topics.topic(topic).fingerprint
        if current.topic_fingerprint and current.topic_fingerprint != fingerprint:
            raise ConfigError(
                topics_file,
                f"topics.{topic}",
                "its queries or entities changed since the model was trained, and the stored "
                "training set holds the old evidence",
                "pass the labelled data again with --data FILE (make model does)",
            )
        items = items_from_model(current)
        log(f"{len(items)} labelled items stored with the model {current.version}")
    else:
        raise ConfigError(
            topics_file,
            f"topics.{topic}.model",
            "no model with a stored training set to start from",
            "pass the labelled data with --data FILE (JSONL: title, text, label)",
        )
    analyst: list[TrainingItem] = []
    if db is not None:
        analyst = _analyst_items(db, topics, topic, label_weight)
        log(f"{len(analyst)} analysts' labels from {db}")
    if current is not None and not new_basis:
        basis = current.language_basis
    else:
        log("language directions from the parallel probe (embedding it, about 40 s)")
        basis = language_basis(probe_texts())
    model, report = fit(
        [*items, *analyst], topic, basis, log=log, fingerprint=topics.topic(topic).fingerprint
    )
    try:
        model.save(target)
    except OSError as e:
        raise ConfigError(
            target, "", f"cannot write the model ({e.strerror})", "pass --output PATH"
        ) from e
    configured = current_path is not None and Path(target).resolve() == current_path.resolve()
    return Trained(model, report, Path(target), len(items), len(analyst), configured)


def _current(
    topics_file: Path, topic: str, path: Path | None, log: Callable[[str], None]
) -> RelevanceModel | None:
    """The topic's current model, with its training set, if it has a readable one."""
    if path is None:
        return None
    try:
        return load_model(path, source=str(topics_file), key=f"topics.{topic}.model")
    except ConfigError as e:
        log(f"the current model cannot be read: {e.problem}")
        return None


def _check_writable(target: Path) -> None:
    """Fail before the fit, not after it, when the model cannot be written."""
    probe = target.with_name(target.name + ".probe")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            target, "", f"cannot write the model here ({e.strerror})", "pass --output PATH"
        ) from e


def _analyst_items(db: Path, topics: TopicSet, topic: str, weight: float) -> list[TrainingItem]:
    from newsmon.warehouse.labels import labelled_articles
    from newsmon.warehouse.store import connect

    with connect(db, read_only=True) as con:
        rows = labelled_articles(con, topic)
    cache = {r["text_key"]: r["vector"] for r in rows if r["vector"] is not None}
    return items_from_rows(rows, topics, topic, cache, source="analyst", weight=weight)


def figures_table(report: CVReport) -> str:
    """The cross-validated figures as a table: overall, not borderline, by language, kind."""
    lines = [
        f"{'items':<22}{'n':>6}{'relevant':>10}{'precision':>11}{'recall':>8}{'f1':>7}{'fp':>6}"
    ]

    def row(name: str, f: Any) -> str:
        if not f.positives:  # nothing to find: only the false alarms say anything
            return f"{name:<22}{f.n:>6}{0:>10}{'-':>11}{'-':>8}{'-':>7}{f.false_positives:>6}"
        return (
            f"{name:<22}{f.n:>6}{f.positives:>10}{f.precision:>11.3f}{f.recall:>8.3f}"
            f"{f.f1:>7.3f}{f.false_positives:>6}"
        )

    lines.append(row("all", report.overall))
    lines.append(row("not borderline", report.not_borderline))
    for title, group in (
        ("language", report.by_language),
        ("kind", report.by_kind),
        ("source", report.by_source),
    ):
        for name, f in group.items():
            if title != "language" or f.positives or f.n >= 10:  # the JSON line has them all
                lines.append(row(f"{title} {name}", f))
    return "\n".join(lines)


__all__ = ["LABEL_WEIGHT", "Trained", "check_topic", "figures_table", "train"]
