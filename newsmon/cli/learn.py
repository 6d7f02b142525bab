"""``newsmon train``, ``newsmon label`` and ``newsmon eval``: measuring a topic and teaching it."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import Any

import click

from newsmon.cli.options import (
    current_settings,
    db_option,
    existing_db,
    handle_errors,
    resolve_db,
    topics_option,
)
from newsmon.core.errors import ConfigError

_topic_option = click.option(
    "--topic", default="eu_nato_defence", show_default=True, help="The topic."
)


def _topics_path(topics_file: Path | None) -> Path:

    return topics_file or current_settings().topics_path


@click.command()
@topics_option
@_topic_option
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Labelled JSONL (title, text, label; lang, text_kind, borderline optional). Repeat for "
    "several. [default: the training set stored with the topic's current model]",
)
@db_option
@click.option("--no-labels", is_flag=True, help="Leave out the analysts' labels in the warehouse.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the model here [default: the topic's `model` path in the topics file].",
)
@click.option(
    "--new-language-basis",
    is_flag=True,
    help="Recompute the language directions from the bundled parallel probe (slow).",
)
@handle_errors
def train(
    topics_file: Path | None,
    topic: str,
    data: tuple[Path, ...],
    db: Path | None,
    no_labels: bool,
    output: Path | None,
    new_language_basis: bool,
) -> None:
    """Fit the topic's relevance model and print its 5-fold cross-validated figures.

    Trains on the labelled files given with --data, else on the training set stored with the
    current model, plus the analysts' labels in the warehouse (`newsmon label`) when it exists.
    The last line is a JSON object: cv_precision, cv_recall, cv_f1, by_language, ...
    """
    from newsmon.learn import figures_table
    from newsmon.learn import train as run_train

    # the default warehouse may not exist yet (nothing labelled); one named with --db must
    use_db = None if no_labels else existing_db(db) if db else resolve_db(None)
    if use_db is not None and not use_db.exists():
        use_db = None
    trained = run_train(
        _topics_path(topics_file),
        topic,
        data=data,
        db=use_db,
        output=output,
        new_basis=new_language_basis,
        log=click.echo,
    )
    r = trained.report
    click.echo(
        f"\n{r.folds}-fold cross-validation; threshold {r.threshold:.2f} (the best F1 on the items "
        f"not borderline), C {r.c}:"
    )
    click.echo(figures_table(r))
    size = trained.path.stat().st_size / 1e6
    click.echo(f"\nwrote {trained.path} ({size:.1f} MB), model {trained.model.version}")
    if not trained.configured:
        click.echo(
            f'to use it, set model = "{trained.path}" under [topics.{topic}] in the topics file'
        )
    click.echo(json.dumps({**r.summary(), "model_version": trained.model.version}))


@click.command()
@db_option
@topics_option
@_topic_option
@click.argument("article")
@click.argument("verdict", type=click.Choice(["relevant", "not-relevant"]))
@click.option("--note", default=None, help="Why (kept with the label).")
@click.option(
    "--by", "by", default=None, help="Who labels [default: $NEWSMON_ANALYST, then $USER]."
)
@handle_errors
def label(
    db: Path | None,
    topics_file: Path | None,
    topic: str,
    article: str,
    verdict: str,
    note: str | None,
    by: str | None,
) -> None:
    """Record an analyst's verdict on a stored ARTICLE (its id, or a unique prefix of 6+
    characters) for a topic. `newsmon train` learns from these; `newsmon eval --db` measures
    the current model against them."""
    from newsmon.extractors.topics import declared_topics
    from newsmon.learn import check_topic
    from newsmon.warehouse.labels import Label, UnknownArticleError, add_label, resolve_article
    from newsmon.warehouse.store import connect

    topics_path = _topics_path(topics_file)
    check_topic(declared_topics(topics_path), topic, topics_path)
    path = existing_db(db)
    who = by or os.environ.get("NEWSMON_ANALYST") or _user()
    with connect(path) as con:
        try:
            article_id, title = resolve_article(con, article)
        except UnknownArticleError as e:
            raise ConfigError(
                path,
                "article",
                f"{e.args[0]} with id {article!r}",
                "copy the id from `newsmon search` or `newsmon sql`",
            ) from None
        add_label(con, Label(article_id, topic, verdict == "relevant", note, who))
    click.echo(f"labelled {article_id} {verdict} for {topic} (by {who}): {(title or '')[:70]}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "analyst"


@click.command(name="eval")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@topics_option
@_topic_option
@click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Measure against the analysts' labels in this warehouse instead of a FILE.",
)
@click.option("--errors", is_flag=True, help="List false positives and false negatives.")
@handle_errors
def eval_(
    file: Path | None, topics_file: Path | None, topic: str, db: Path | None, errors: bool
) -> None:
    """Score labelled items (JSONL: title, text, label) and print precision and recall; or,
    with --db, score the articles analysts labelled (`newsmon label`) with the current topics
    and model, against their labels (stored embeddings are reused).

    The last line is a JSON object: precision, recall, f1, tp, fp, fn, tn.
    """
    from newsmon.extractors.evaluate import evaluate_file, evaluate_labelled
    from newsmon.extractors.topics import load_topics
    from newsmon.learn import check_topic

    path = _topics_path(topics_file)
    topics = load_topics(path)
    check_topic(topics, topic, path)
    if db is not None:
        from newsmon.warehouse.labels import labelled_articles
        from newsmon.warehouse.store import connect

        with connect(existing_db(db), read_only=True) as con:
            rows = labelled_articles(con, topic)
        report = evaluate_labelled(rows, topics, topic)
        model = topics.topic(topic).model
        by = f"model {model.version}" if model else "the keyword filter"
        click.echo(f"{len(rows)} labelled articles, scored now by {by}")
        if model is not None and any(e.id.startswith("label:") for e in model.examples):
            click.echo("(the model was trained on these labels: figures in sample)")
    elif file is None:
        raise click.UsageError("give a labelled FILE, or --db for the analysts' labels")
    else:
        report = evaluate_file(file, topics, topic)
    click.echo(format_eval(report, errors))
    click.echo(json.dumps(report.summary()))


def format_eval(report: Any, errors: bool) -> str:
    head = ("items", "precision", "recall", "f1", "tp", "fp", "fn", "tn")
    lines = [
        f"{head[0]:<16}{head[1]:>10}{head[2]:>8}{head[3]:>7}" + "".join(f"{h:>5}" for h in head[4:])
    ]

    def row(name: str, r: Any) -> str:
        return (
            f"{name:<16}{r.precision:>10.3f}{r.recall:>8.3f}{r.f1:>7.3f}"
            f"{r.tp:>5}{r.fp:>5}{r.fn:>5}{r.tn:>5}"
        )

    lines.append(row("all", report))
    for kind, sub in sorted(getattr(report, "by_kind", {}).items()):
        lines.append(row(kind, sub))
    if errors:
        from newsmon.extractors.topics import TopicMatch, describe

        for err in report.errors:
            lines.append("")
            lines.append(
                f"{err.kind:<15} {err.score:5.2f}  {err.id}  [{err.text_kind}] {err.title}"
            )
            match = TopicMatch("", err.score, bool(err.predicted), err.explanation or {})
            lines.append("  " + describe(match))
    return "\n".join(lines)
