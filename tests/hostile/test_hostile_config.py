"""Hostile configuration and hostile files, each one line and no traceback: a topic query nested
5,000 deep or of 50,000 terms (the parser recursed into a RecursionError), a time zone that is a
path, and a warehouse file that is random bytes or cut short (a run printed Prefect's report of
the failure with its traceback before the one line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from tests.paths import ROOT, topics_copy

HOSTILE_QUERIES = {
    "nested": "(" * 5000 + "nato" + ")" * 5000,
    "negated": "NOT " * 20000 + "nato",
    "chained": " NEAR/2 ".join(["nato"] * 5000),
    "many terms": " OR ".join(f"term{i}" for i in range(50_000)),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_QUERIES))
def test_a_hostile_topic_query_is_one_line(tmp_path: Path, kind: str) -> None:
    query = HOSTILE_QUERIES[kind].replace("\\", "\\\\").replace('"', '\\"')
    topics = topics_copy(tmp_path / "topics.toml", {})
    topics.write_text(
        topics.read_text(encoding="utf-8")
        + f'\n[topics.hostile]\nthreshold = 0.5\n[topics.hostile.queries.q]\nquery = "{query}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["init", "--db", str(tmp_path / "w.duckdb"), "--topics", str(topics)]
    )
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.stderr.splitlines()) == 1 and len(result.stderr) < 1000, result.stderr[:500]
    assert "topics.hostile.queries.q" in result.stderr or "hostile" in result.stderr
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize("zone", ["../../../../etc/passwd", "/etc/localtime", "UTC\\u0000x"])
def test_a_time_zone_that_is_a_path_is_refused(tmp_path: Path, zone: str) -> None:
    alerts = tmp_path / "alerts.toml"
    alerts.write_text(
        'version = 1\n[[subscriptions]]\nname = "a"\nrecipients = ["a@example.org"]\n'
        f'topics = ["eu_nato_defence"]\ntimezone = "{zone}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli, ["digest", "--db", str(tmp_path / "w.duckdb"), "--alerts", str(alerts)]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "unknown time zone" in result.stderr


def test_a_warehouse_of_random_bytes_is_one_line_with_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    db.write_bytes(os.urandom(20_000))
    for command in (["status"], ["sql", "SELECT 1"], ["search", "nato"]):
        result = CliRunner().invoke(cli, [command[0], "--db", str(db), *command[1:]])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
        assert "the file is damaged" in result.stderr, result.stderr


@pytest.mark.usefixtures("prefect_server")
def test_a_run_on_a_truncated_warehouse_is_one_line_with_the_fix(tmp_path: Path) -> None:
    """The run's flow failed, and Prefect printed its report with a traceback first."""
    from prefect.settings import PREFECT_API_URL

    db = tmp_path / "w.duckdb"
    good = tmp_path / "good.duckdb"
    assert CliRunner().invoke(cli, ["init", "--db", str(good)]).exit_code == 0
    db.write_bytes(good.read_bytes()[:5000])
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        '[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:9/feed.xml"\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    out = subprocess.run(
        [sys.executable, "-m", "newsmon.cli", "run", "--db", str(db), "--feeds", str(feeds)],
        env=env | {"PREFECT_API_URL": str(PREFECT_API_URL.value())},
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"Error: cannot open {db}: ")
    assert "the file is damaged" in out.stderr and "newsmon init --db OTHER" in out.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NEWSMON_POLL_MAX_INTERVAL", "1e300"),  # overflowed the schedule's dates
        ("NEWSMON_WORKERS", "100000"),  # a process each
        ("NEWSMON_BATCH_SIZE", "1" + "0" * 30),
        ("NEWSMON_HTTP_TIMEOUT", "inf"),
        ("NEWSMON_SMTP_PORT", "99999"),
        ("NEWSMON_HTTP_MAX_BYTES", "-1"),
    ],
)
def test_extreme_environment_values_stop_before_any_work(
    tmp_path: Path, name: str, value: str
) -> None:
    db = tmp_path / "w.duckdb"
    result = CliRunner().invoke(cli, ["run", "--init", "--db", str(db)], env={name: value})
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and f"{name}: must be" in result.stderr
    assert not db.exists()
