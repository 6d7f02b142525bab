"""docs/queries.md, search and export, on the demo warehouse built as `make demo` builds it.

The warehouse comes from :func:`newsmon.cli.demo.run_demo`: the bundled sample served on 127.0.0.1
and two real ingest flow runs. Every ``sql`` block of docs/queries.md is run through
``newsmon sql`` and must print exactly the ``text`` block under it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from newsmon.cli import cli
from newsmon.cli.demo import run_demo
from newsmon.cli.render import render
from newsmon.warehouse.store import connect, run_query
from tests.paths import ROOT

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]

DOC = ROOT / "docs" / "queries.md"
BLOCK = re.compile(r"```sql\n(.*?)\n```\n\n```text\n(.*?)\n```", re.S)
VIEWS = [
    "relevant_articles",
    "daily_topic_counts",
    "entity_mentions_daily",
    "story_timeline",
    "feed_health",
]


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="newsmon")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    lines: list[str] = []
    run_demo(db, echo=lines.append)
    assert any("13 new" in line for line in lines), lines
    return db


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def doc_blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_a_query_for_every_view_and_the_asked_for_questions() -> None:
    text = DOC.read_text(encoding="utf-8")
    sql = "\n".join(q for q, _ in doc_blocks())
    assert len(doc_blocks()) == text.count("```sql") >= 10
    for view in VIEWS:
        assert view in sql
    for heading in ("Top entities this week", "New stories today", "broke a story first"):
        assert heading in text


def test_every_query_in_the_doc_prints_its_documented_output(demo_db: Path, in_tmp: Path) -> None:
    exported = invoke("export", "--db", demo_db, "demo-export")
    assert exported.exit_code == 0, exported.output
    mismatches = []
    for query, output in doc_blocks():
        if "read_parquet(" in query:  # an export read back in one's own DuckDB session
            with duckdb.connect() as con:
                table = run_query(con, query)
            stdout = render(table.columns, table.rows) + "\n"
        else:
            result = invoke("sql", "--db", demo_db, query)
            assert result.exit_code == 0, f"{query}\n{result.output}"
            stdout = result.stdout
        if stdout != output + "\n":
            mismatches.append(f"{query}\n--- documented\n{output}\n--- got\n{stdout}")
    assert not mismatches, "\n\n".join(mismatches)


def test_the_views_exist_and_every_demo_article_is_in_a_story(demo_db: Path) -> None:
    with duckdb.connect(str(demo_db), read_only=True) as con:
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
        stories = con.execute(
            "SELECT count(*) FILTER (WHERE story_id IS NULL), count(DISTINCT story_id) "
            "FROM articles"
        ).fetchone()
        relevant = con.execute("SELECT count(*) FROM relevant_articles").fetchone()
    assert set(VIEWS) <= views
    assert stories == (0, 16)  # 13 sample articles and 3 baseline ones, no two alike
    assert relevant == (11,)  # 8 relevant sample articles and the 3 baseline ones


# --- search -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("drone wall", "First section of eastern drone wall goes live along Baltic borders"),
        ("Baltic Sentry subsea cable", "NATO steps up ‘Baltic Sentry’ patrols after second subsea"),
        (
            "SAFE loans European Defence Fund",
            "EU signs first SAFE defence loans and names European",
        ),
        (
            "military mobility corridors troops",
            "EU and NATO agree joint list of priority corridors",
        ),
        ("feuille de route", "Défense européenne : l'UE et l'OTAN s'accordent sur une feuille"),
        ("Übungsplatz Litauen", "Bundeswehr-Brigade in Litauen übernimmt neuen Übungsplatz"),
        ("Spratly warships", "US and Chinese warships in close encounter near the Spratly"),
        ("steel fasteners tariffs", "Brussels proposes new tariffs on imported steel fasteners"),
    ],
)
def test_search_puts_the_obvious_best_match_first(demo_db: Path, query: str, best: str) -> None:
    result = invoke("search", "--db", demo_db, "--format", "json", query)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["title"].startswith(best)
    assert rows[0]["bm25"] > (rows[1]["bm25"] if len(rows) > 1 else 0)
    assert list(rows[0]) == [
        "bm25",
        "published",
        "outlet",
        "title",
        "score",
        "relevant",
        "copies",
        "url",
    ]


def test_search_filters_by_topic_date_outlet_language_and_limit(demo_db: Path) -> None:
    def lines(*options: str, query: str = "defence") -> list[str]:
        result = invoke("search", "--db", demo_db, "--format", "csv", *options, query)
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()[1:]

    everything = lines()
    relevant = lines("--topic", "eu_nato_defence")
    recent = lines("--since", "2026-11-12")
    assert len(everything) > len(relevant) > len(recent) >= 1
    assert any("Harbour City defence holds firm" in line for line in everything)  # football
    assert not any("Harbour City" in line for line in relevant)
    assert all(",True," in line for line in relevant)
    assert all(line.split(",")[1] >= "2026-11-12" for line in recent)
    assert lines("--limit", "2") == everything[:2]
    outlet = everything[0].split(",")[2]
    by_outlet = lines("--source", outlet)
    assert by_outlet and all(line.split(",")[2] == outlet for line in by_outlet)
    # the matches for "defence" are all in English: none in French, all in English
    assert lines("--language", "fr") == [] and lines("--language", "EN") == everything
    # the topics' query language: only what the query matches, ranked by BM25
    narrowed = lines(query="defence AND NOT (football OR derby)")
    assert narrowed and not any("Harbour City" in line for line in narrowed)


def test_search_without_an_index_says_how_to_get_one(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with connect(db):
        pass  # migrated, empty: no run has built the index yet
    result = invoke("search", "--db", db, "nato")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the warehouse has no search index yet: it is built by `newsmon run` and "
        "`newsmon rescore`\n"
    )


def test_init_builds_the_index_and_the_baseline_stories(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert invoke("init", "--db", db).exit_code == 0
    result = invoke("search", "--db", db, "--format", "csv", "Stoltenberg")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].split(",")[3] == (
        "NATO chief says EU defence push need not duplicate NATO"
    )


# --- export -------------------------------------------------------------------------------------


def test_export_writes_day_partitioned_parquet_that_reads_back(
    demo_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = invoke("export", "--db", demo_db, "--since", "2026-11-10", out)
    assert result.exit_code == 0, result.output
    assert [line.split()[:3] for line in result.stdout.splitlines()] == [
        ["articles", "5", "rows"],
        ["matches", "5", "rows"],
        ["entities", "45", "rows"],
        ["stories", "5", "rows"],
    ]
    days = sorted(p.name for p in (out / "articles").iterdir())
    assert days == [f"day=2026-11-{d}" for d in range(10, 15)]
    with duckdb.connect() as con:
        back = con.execute(
            f"""
            SELECT count(*), count(DISTINCT story_id), count(*) FILTER (WHERE len(relevant_to) > 0),
                   min(day), typeof(min(day))
            FROM read_parquet('{out}/articles/*/*.parquet', hive_partitioning = true)
            """
        ).fetchone()
        joined = con.execute(
            f"""
            SELECT count(*) FROM read_parquet('{out}/matches/*/*.parquet') m
            JOIN read_parquet('{out}/articles/*/*.parquet') a USING (article_id)
            """
        ).fetchone()
    assert back is not None and back[:3] == (5, 5, 4) and str(back[3]) == "2026-11-10"
    assert back[4] == "DATE"
    assert joined == (5,)


def test_export_csv_and_refusing_a_non_empty_directory(demo_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("export", "--db", demo_db, "--format", "csv", out).exit_code == 0
    files = sorted(out.glob("articles/*/*.csv"))
    assert len(files) == 16 and files[0].read_text(encoding="utf-8").startswith("article_id,")

    again = invoke("export", "--db", demo_db, out)
    assert again.exit_code == 2
    assert again.stderr == (
        f"Error: {out}: is not empty. Fix: choose a new directory or pass --overwrite to "
        "replace it\n"
    )
    replaced = invoke("export", "--db", demo_db, "--overwrite", "--since", "2026-11-14", out)
    assert replaced.exit_code == 0, replaced.output
    assert [p.name for p in (out / "articles").iterdir()] == ["day=2026-11-14"]
    shutil.rmtree(out)


def test_bm25_works_in_ad_hoc_sql(demo_db: Path) -> None:
    result = invoke(
        "sql", "--db", demo_db, "--format", "csv",
        "SELECT title FROM (SELECT title, fts_main_articles.match_bm25(article_id, 'drone wall')"
        " AS s FROM articles) WHERE s IS NOT NULL ORDER BY s DESC LIMIT 1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "drone wall" in result.output.splitlines()[1]
