"""The ``newsmon`` command line: exit statuses, messages and output, on real files and servers.

Commands that run no Prefect flow go through click's CliRunner in this process; ``run`` goes
through a real subprocess (it starts Prefect's temporary server: one such test only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsmon.cli import cli
from newsmon.core.errors import WarehouseLockedError
from newsmon.extractors.relevance import load_model
from newsmon.warehouse.store import connect
from tests.helpers import record, rows
from tests.httpserver import LoopbackHTTPServer, closed_port
from tests.paths import CORPUS, ROOT
from tests.sample import expected, serve_sample, write_feeds_toml

TOPICS = ROOT / "config" / "topics.toml"
LABELLED = CORPUS / "labelled" / "items.jsonl"
BASELINE_TITLES = [
    "NATO chief says EU defence push need not duplicate NATO",
    "NATO, EU Eye ‘Next Level’ Partnership in Face of Russia Threat",
    "EU Unveils Defense Strategy in Collaboration with NATO",
]


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, prog_name="newsmon")
    # a NewsmonError becomes a message and an exit status, never an uncaught exception
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse made by ``newsmon init`` (shared: tests on it only read)."""
    path = tmp_path_factory.mktemp("cli") / "w.duckdb"
    result = invoke("init", "--db", path, "--topics", TOPICS)
    assert result.exit_code == 0, result.output
    return path


# --- init -----------------------------------------------------------------------------------


def test_init_creates_the_warehouse_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.duckdb"

    first = invoke("init", "--db", path)

    assert first.exit_code == 0, first.output
    assert path.is_file()
    lines = first.stdout.splitlines()
    assert lines[0].startswith(f"Created {path} (schema version ")
    assert lines[1] == "Baseline: 3 article(s) loaded now, 3 in total."
    assert [line.split(": ", 1)[1] for line in lines[2:]] == BASELINE_TITLES
    assert all(" relevant " in line and "eu_nato_defence: " in line for line in lines[2:])

    second = invoke("init", "--db", path)

    assert second.exit_code == 0, second.output
    again = second.stdout.splitlines()
    assert again[0] == lines[0].replace("Created", "Opened")
    assert again[1] == "Baseline: 0 article(s) loaded now, 3 in total."
    assert again[2:] == lines[2:]
    assert rows(path, "SELECT count(*), count(*) FILTER (WHERE is_baseline) FROM articles") == [
        (3, 3)
    ]


# --- sql ------------------------------------------------------------------------------------

QUERY = "SELECT 1 AS a, 'x' AS b"


@pytest.mark.parametrize(
    ("fmt", "output"),
    [
        ("table", "a  b\n-  -\n1  x\n(1 row)\n"),
        ("csv", "a,b\n1,x\n"),
        ("json", '[\n {\n  "a": 1,\n  "b": "x"\n }\n]\n'),
    ],
)
def test_sql_formats(db: Path, fmt: str, output: str) -> None:
    result = invoke("sql", "--db", db, "--format", fmt, QUERY)
    assert result.exit_code == 0, result.output
    assert result.stdout == output


def test_sql_default_format_is_a_table_over_the_warehouse(db: Path) -> None:
    result = invoke(
        "sql", "--db", db, "SELECT count(*) AS n FROM articles UNION ALL SELECT 42 ORDER BY n"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "n\n--\n3\n42\n(2 rows)\n"


def test_sql_uses_newsmon_db_when_no_db_option(db: Path) -> None:
    result = invoke("sql", "--format", "csv", QUERY, env={"NEWSMON_DB": str(db)})
    assert result.exit_code == 0, result.output
    assert result.stdout == "a,b\n1,x\n"


def test_sql_failing_query_is_one_line_exit_1(db: Path) -> None:
    result = invoke("sql", "--db", db, "SELEC 1")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == 'Error: query failed: Parser Error: syntax error at or near "SELEC"\n'


@pytest.mark.parametrize(
    "query",
    [
        "COPY (SELECT * FROM articles) TO '{out}'",
        "SELECT * FROM read_text('{secret}')",
        "ATTACH '{out}.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD '{out}'",
        "SET enable_external_access = true",
    ],
)
def test_sql_reaches_nothing_but_the_warehouse(db: Path, tmp_path: Path, query: str) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("s3cr3t", encoding="utf-8")
    out = tmp_path / "out.csv"
    result = invoke("sql", "--db", db, query.format(out=out, secret=secret))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: query failed: "), result.stderr
    assert "s3cr3t" not in result.output and not out.exists()
    assert not Path(f"{out}.duckdb").exists()


def test_sql_empty_query_is_one_line(db: Path) -> None:
    for query in ("", "   "):
        result = invoke("sql", "--db", db, query)
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: empty query: give one SQL statement"), result


def test_sql_bm25_still_works(db: Path) -> None:
    result = invoke(
        "sql", "--db", db,
        "SELECT count(*) FROM (SELECT fts_main_articles.match_bm25(article_id, 'nato') AS s "
        "FROM articles) WHERE s IS NOT NULL",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_sql_missing_warehouse_says_to_run_init(tmp_path: Path) -> None:
    path = tmp_path / "nope.duckdb"
    result = invoke("sql", "--db", path, QUERY)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no warehouse at {path}: create it with `newsmon init --db {path}`\n"
    )
    assert not path.exists()


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("INSERT INTO runs (run_id) VALUES ('x')", "INSERT"),
        ("CREATE TABLE t (a INTEGER)", "CREATE"),
        ("DELETE FROM articles", "DELETE"),
    ],
)
def test_sql_is_read_only(db: Path, query: str, kind: str) -> None:
    result = invoke("sql", "--db", db, query)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f'Error: query failed: Invalid Input Error: Cannot execute statement of type "{kind}"'
    )
    assert result.stderr.endswith("read-only mode!\n")
    assert result.stderr.count("\n") == 1
    assert rows(db, "SELECT count(*) FROM articles") == [(3,)]
    assert rows(db, "SELECT count(*) FROM runs") == [(0,)]
    assert rows(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 't'") == [
        (0,)
    ]


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])  # read-write: holds the file's write lock
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.fixture
def hold_lock(db: Path) -> Iterator[Callable[[float], subprocess.Popen[str]]]:
    """Start a process that holds ``db`` read-write for the given seconds; killed afterwards."""
    procs: list[subprocess.Popen[str]] = []

    def start(seconds: float) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_sql_waits_while_another_process_holds_the_write_lock(
    db: Path, hold_lock: Callable[[float], subprocess.Popen[str]]
) -> None:
    holder = hold_lock(4.0)  # the test may lose up to 3 s before `sql` starts and still see a wait
    started = time.monotonic()

    result = invoke("sql", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM articles")

    assert result.exit_code == 0, result.output
    assert result.stdout == "n\n3\n"
    assert time.monotonic() - started >= 1.0  # it waited for the lock
    assert holder.wait(timeout=10) == 0


def test_lock_held_beyond_the_wait_is_a_warehouse_locked_error(
    db: Path, hold_lock: Callable[[float], subprocess.Popen[str]]
) -> None:
    hold_lock(30.0)
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError) as info, connect(db, read_only=True, wait_s=0.5):
        pass
    assert 0.5 <= time.monotonic() - started < 5
    assert str(info.value) == (
        f"{db} is locked by another newsmon process (an ingest run?); "
        "waited 0.5 s: try again when it has finished"
    )


# --- status ---------------------------------------------------------------------------------


def test_status_after_init(db: Path) -> None:
    result = invoke("status", "--db", db)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Warehouse {db}"
    assert lines[1].startswith("  articles: 3 (3 baseline, ")
    assert lines[1].endswith("relevant: 3")
    assert lines[2] == "  last run: never"
    assert lines[3] == "Feeds:"
    assert lines[4].split() == [
        "name",
        "status",
        "reason",
        "last_success",
        "error_streak",
        "items",
        "items_per_day",
        "next_poll_utc",
        "why",
    ]
    assert lines[-1] == "(0 rows)"


def test_status_missing_warehouse(tmp_path: Path) -> None:
    result = invoke("status", "--db", tmp_path / "nope.duckdb")
    assert result.exit_code == 1
    assert "newsmon init --db" in result.stderr


# --- eval -----------------------------------------------------------------------------------


def test_eval_prints_scores_and_a_json_last_line() -> None:
    result = invoke("eval", LABELLED)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    summary = json.loads(lines[-1])
    assert list(summary) == ["precision", "recall", "f1", "tp", "fp", "fn", "tn"]
    tp, fp, fn, tn = (summary[k] for k in ("tp", "fp", "fn", "tn"))
    assert tp + fp + fn + tn == 157
    assert summary["precision"] == round(tp / (tp + fp), 4)
    assert summary["recall"] == round(tp / (tp + fn), 4)
    assert lines[0].split() == ["items", "precision", "recall", "f1", "tp", "fp", "fn", "tn"]
    assert lines[1].split()[0] == "all"
    assert [int(v) for v in lines[1].split()[4:]] == [tp, fp, fn, tn]
    assert not any(line.startswith(("false_positive", "false_negative")) for line in lines)


def test_eval_errors_lists_false_positives_and_negatives() -> None:
    result = invoke("eval", "--errors", LABELLED)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    summary = json.loads(lines[-1])
    fps = [line for line in lines if line.startswith("false_positive ")]
    fns = [line for line in lines if line.startswith("false_negative ")]
    assert (len(fps), len(fns)) == (summary["fp"], summary["fn"])
    ids = {line.split()[2] for line in fps + fns}
    assert len(ids) == summary["fp"] + summary["fn"]
    assert all(i.startswith("eunato-") for i in ids)
    threshold = load_model(ROOT / "config" / "models" / "eu_nato_defence.npz").threshold
    assert all(float(line.split()[1]) >= threshold for line in fps)  # predicted relevant
    assert all(float(line.split()[1]) < threshold for line in fns)
    # each error is followed by its explanation: the verdict, then the evidence and its weight
    for i, line in enumerate(lines):
        if line.startswith(("false_positive ", "false_negative ")):
            why = lines[i + 1]
            verdict = "  relevant: score " if line.startswith("false_p") else "  not relevant: "
            assert why.startswith(verdict), why
            assert "text (closest labelled examples) " in why and "closest example" in why, why


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"title": "a", "text": "b", "label": 1}\n{bad\n',
            ": line 2: not valid JSON (Expecting property name enclosed in double quotes at "
            "column 2). Fix: one object per line",
        ),
        (
            '\n{"title": "a", "text": "b", "label": 2}\n',
            ': line 2: label: must be 0 or 1, got 2. Fix: set "label": 0 or 1',
        ),
    ],
)
def test_eval_malformed_file_exit_2_names_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    result = invoke("eval", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"Error: {path}{message}\n"


# --- bad configuration stops before any work -------------------------------------------------


def test_run_with_a_broken_feeds_file_does_nothing(tmp_path: Path) -> None:
    feeds = tmp_path / "broken.toml"
    feeds.write_text('[[feeds]]\nname = "a"\nurll = "http://a.example/rss"\n', encoding="utf-8")
    db_path = tmp_path / "tmp" / "x.duckdb"

    result = invoke("run", "--init", "--feeds", feeds, "--db", db_path)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {feeds}: feeds[0].urll: unknown key. "
        "Fix: use only: language, name, poll_interval_minutes, tags, url\n"
    )
    assert not db_path.exists() and not db_path.parent.exists()


def test_run_with_a_bad_variable_does_nothing(tmp_path: Path) -> None:
    db_path = tmp_path / "tmp" / "x.duckdb"
    result = invoke("run", "--db", db_path, env={"NEWSMON_HTTP_TIMEOUT": "abc"})
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: environment: NEWSMON_HTTP_TIMEOUT: must be a number greater than 0 and at most "
        "3600, got 'abc'. "
        "Fix: set NEWSMON_HTTP_TIMEOUT=10.0 or unset it for the default\n"
    )
    assert not db_path.parent.exists()


def test_init_with_a_missing_topics_file_exit_2(tmp_path: Path) -> None:
    db_path = tmp_path / "x.duckdb"
    topics = tmp_path / "nope.toml"
    result = invoke("init", "--db", db_path, "--topics", topics)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {topics}: cannot read the file (")
    assert not db_path.exists()


# --- run: one real ingest in a subprocess ---------------------------------------------------


@pytest.mark.prefect
def test_run_ingests_the_sample_and_reports_a_refused_feed(
    http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    feeds = serve_sample(http_server)
    feeds["down"] = f"http://127.0.0.1:{closed_port()}/feed.xml"
    feeds_file = write_feeds_toml(tmp_path / "feeds.toml", feeds)
    db_path = tmp_path / "w.duckdb"

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "newsmon.cli",
            "run",
            "--init",
            "--feeds",
            feeds_file,
            "--db",
            db_path,
        ],
        env={**os.environ, "NEWSMON_WORKERS": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"Ingesting 4 feeds into {db_path} ..."
    assert lines[1].startswith("Run ") and lines[1].endswith(": 4 feeds")
    assert lines[2:6] == [
        "  defence-wire    ok            6 entries, 6 new",
        "  europe-desk     ok            5 entries, 5 new",
        "  security-brief  ok            3 entries, 3 new",
        "  down            failed        refused: connection refused",
    ]
    assert lines[6] == (
        "Articles: 13 new, 0 retried, 0 page(s) failed (kept with the feed's title and summary)"
    )
    assert lines[7] == "Baseline: 3 article(s) loaded"
    relevant = sorted(a["title"] for a in expected()["articles"].values() if a["relevant"])
    assert lines[8] == f"Relevant: {len(relevant)}"
    assert sorted(line[9:] for line in lines[9 : 9 + len(relevant)]) == relevant
    assert lines[9 + len(relevant) :] == ["1 feed(s) failed; they are retried on the next run."]
    assert rows(db_path, "SELECT count(*) FROM articles") == [(16,)]


# --- help: every command documents itself ----------------------------------------------------


def test_top_level_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: newsmon [OPTIONS] COMMAND [ARGS]...")
    listed = result.stdout.split("Commands:", 1)[1].split()
    assert set(cli.commands) <= set(listed)


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_showing_its_docstring(name: str) -> None:
    command = cli.commands[name]
    assert command.help, f"{name} has no docstring"
    first = command.help.strip().splitlines()[0]

    result = invoke(name, "--help")

    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: newsmon {name} [OPTIONS]")
    assert " ".join(first.split()) in " ".join(result.stdout.split())


def test_terminal_controls_from_feeds_are_never_printed(tmp_path: Path) -> None:
    """A title carrying ESC/OSC sequences, BEL and a C1 CSI would retitle or clear the analyst's
    terminal; sql (table and csv) and search show them as U+FFFD."""
    from newsmon.warehouse.loads import load_articles
    from newsmon.warehouse.search import refresh_index
    from newsmon.warehouse.store import connect

    hostile = "NATO \x1b]0;pwned\x07 drills \x1b[2J\x9b31m over"
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        load_articles(con, [record(1, "Body text about NATO.", title=hostile)])
        refresh_index(con)
    for fmt in ("table", "csv"):
        result = invoke("sql", "--db", db, "--format", fmt, "SELECT title FROM articles")
        assert result.exit_code == 0, result.output
        assert not any(c in result.stdout for c in "\x1b\x07\x9b"), repr(result.stdout)
        assert "NATO \ufffd]0;pwned\ufffd drills" in result.stdout
    result = invoke("search", "--db", db, "drills")
    assert result.exit_code == 0 and "\x1b" not in result.stdout, (result.stdout, result.stderr)


def test_run_where_nothing_can_be_written_is_one_line(tmp_path: Path) -> None:
    """A warehouse path in a folder newsmon cannot write (here /proc, read-only even for
    root): one line naming the lock file and the fix, before any flow starts; no traceback."""
    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feeds]]\nname = "One"\nurl = "https://one.example/rss"\n', "utf-8")
    result = invoke("run", "--init", "--db", "/proc/newsmon-test.duckdb", "--feeds", feeds)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        "Error: cannot create the lock file /proc/newsmon-test.duckdb.ingest.lock"
    ), result.stderr
    assert "give --db a path in a writable folder" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        ("run",),
        ("sql", "SELECT 1"),
        ("status",),
        ("search", "nato"),
        ("export", "out"),
        ("checkpoint",),
        ("rescore",),
        ("digest",),
        ("eval", "--db"),
        ("train", "--db"),
        ("label", "abcdef", "relevant"),
    ],
    ids=lambda c: c[0],
)
def test_a_missing_warehouse_is_one_line_with_one_exit_status_everywhere(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Issue 21: run made a new warehouse at a mistyped path; the others said it in two ways
    with two exit statuses."""
    path = tmp_path / "typo" / "w.duckdb"
    name, *rest = command
    args = [name, *rest, str(path)] if rest[-1:] == ["--db"] else [name, "--db", path, *rest]
    result = invoke(*args, env={"NEWSMON_ALERTS": str(ROOT / "config" / "alerts.toml")})
    assert (result.exit_code, result.stderr) == (
        1,
        f"Error: no warehouse at {path}: create it with `newsmon init --db {path}`\n",
    )
    assert not path.parent.exists()
