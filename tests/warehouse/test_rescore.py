"""Rescoring without refetching: verdicts follow the topics file, atomically, via flow and CLI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.core.settings import DEFAULT_CONFIG_DIR
from newsmon.extractors.embedding import Given
from newsmon.extractors.pipeline import filter_articles
from newsmon.extractors.topics import Document, FilterResult, TopicSet, load_topics
from newsmon.warehouse import loads
from newsmon.warehouse.baseline import ensure_baseline
from newsmon.warehouse.rescore import rescore
from newsmon.warehouse.store import connect
from tests.helpers import record
from tests.paths import topics_copy

TOPICS_FILE = DEFAULT_CONFIG_DIR / "topics.toml"
TOPICS = load_topics(TOPICS_FILE)

ARTICLES = [
    ("NATO allies raise defence spending", "Germany and Poland pledge more for the eastern flank."),
    ("EU agrees European Defence Fund boost", "Defence ministers in Brussels back PESCO projects."),
    ("Cat show in Paris", "Cats of every breed were judged on Sunday."),
    ("Tram line opens in Riga", "Commuters welcomed the new route."),
]


def strict_topics(tmp_path: Path) -> Path:
    """The shipped topics without the model and with a threshold nothing reaches (examples path
    made absolute)."""
    return topics_copy(
        tmp_path / "strict.toml",
        {"threshold = 0.5\n": "threshold = 0.99\n", 'model = "models/eu_nato_defence.npz"\n': ""},
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    db = tmp_path / "w.duckdb"
    ensure_baseline(db, TOPICS)
    records = filter_articles(
        [record(i, text, title=title) for i, (title, text) in enumerate(ARTICLES)], TOPICS
    )
    with connect(db) as con:
        loads.load_articles(con, records)
    return db


def verdicts(db: Path) -> dict[str, tuple[float, bool]]:
    with connect(db, read_only=True) as con:
        rows = con.execute("SELECT article_id, score, relevant FROM article_matches").fetchall()
    return {aid: (score, rel) for aid, score, rel in rows}


def test_rescore_with_the_same_topics_changes_nothing(warehouse: Path) -> None:
    before = verdicts(warehouse)
    with connect(warehouse) as con:
        summary = rescore(con, TOPICS, batch_size=2)
    assert summary.articles == 7  # 3 baseline + 4 loaded
    assert summary.changed == 0
    assert verdicts(warehouse) == before
    change = summary.topics["eu_nato_defence"]
    assert change.relevant_before == change.relevant_after == 5


def test_rescore_applies_a_changed_topic_and_counts_the_changes(
    warehouse: Path, tmp_path: Path
) -> None:
    with connect(warehouse) as con:
        entities_before = con.execute("SELECT count(*) FROM article_entities").fetchone()
        summary = rescore(con, load_topics(strict_topics(tmp_path)), batch_size=3)
        entities_after = con.execute("SELECT count(*) FROM article_entities").fetchone()
    change = summary.topics["eu_nato_defence"]
    assert (change.relevant_before, change.relevant_after) == (5, 0)
    assert (change.became_relevant, change.no_longer_relevant) == (0, 5)
    assert summary.changed == 5
    assert not any(rel for _, rel in verdicts(warehouse).values())
    assert entities_before == entities_after  # same entity rules, same rows


def test_a_failing_rescore_changes_nothing(warehouse: Path, tmp_path: Path) -> None:
    before = verdicts(warehouse)
    calls = 0

    def flaky(docs: Sequence[Document], topics: TopicSet, vectors: Given) -> list[FilterResult]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("scorer crashed mid-way")
        from newsmon.extractors.topics import filter_documents

        return filter_documents(docs, topics, vectors)

    with connect(warehouse) as con, pytest.raises(RuntimeError, match="mid-way"):
        rescore(con, load_topics(strict_topics(tmp_path)), batch_size=2, scorer=flaky)
    assert verdicts(warehouse) == before


def test_cli_rescore_runs_the_flow_and_reports(
    warehouse: Path, tmp_path: Path, prefect_server: None
) -> None:
    args = ["rescore", "--db", str(warehouse), "--topics", str(strict_topics(tmp_path))]
    result = CliRunner().invoke(cli, args, prog_name="newsmon")
    assert result.exit_code == 0, result.output
    assert "Rescored 7 articles: 5 changed relevance." in result.output
    assert "eu_nato_defence" in result.output
    assert not any(rel for _, rel in verdicts(warehouse).values())


def test_cli_rescore_with_a_bad_topics_file_does_nothing(warehouse: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[topics.t]\nthreshold = 0.5\n[topics.t.queries.q]\nquery = "(nato"\n')
    before = verdicts(warehouse)
    result = CliRunner().invoke(
        cli, ["rescore", "--db", str(warehouse), "--topics", str(bad)], prog_name="newsmon"
    )
    assert result.exit_code == 2
    assert "topics.t.queries.q.query: query syntax error at position 5" in result.output
    assert verdicts(warehouse) == before


def test_rescore_fills_in_missing_languages(warehouse: Path) -> None:
    with connect(warehouse) as con:
        con.execute("UPDATE articles SET detected_language = NULL")
        rescore(con, TOPICS)
        langs = dict(con.execute("SELECT title, detected_language FROM articles").fetchall())
    assert langs["NATO allies raise defence spending"] == "en"
    assert all(lang == "en" for lang in langs.values())
