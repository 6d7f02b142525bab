"""``newsmon sql`` from a stranger's cheat sheet: every way out of the warehouse (COPY TO, file
readers, ATTACH, INSTALL/LOAD, re-enabling access) is one line and touches nothing; a BLOB and
a string of terminal controls print as inert text."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsmon.cli import cli


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sql") / "w.duckdb"
    assert CliRunner().invoke(cli, ["init", "--db", str(path)]).exit_code == 0
    return path


@pytest.mark.parametrize(
    "query",
    [
        "COPY (SELECT 1) TO '{out}'",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "ATTACH '{out}' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SELECT * FROM read_blob('/etc/hostname')",
    ],
)
def test_no_way_out_of_the_warehouse(db: Path, tmp_path: Path, query: str) -> None:
    out = tmp_path / "leak.csv"
    result = CliRunner().invoke(cli, ["sql", "--db", str(db), query.format(out=out)])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_blobs_and_terminal_controls_print_inert(db: Path) -> None:
    query = "SELECT '\\x1b]0;pwned\\x07'::BLOB AS b, chr(27) || '[2J' || chr(155) AS s"
    result = CliRunner().invoke(cli, ["sql", "--db", str(db), query])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\x9b" not in result.output
