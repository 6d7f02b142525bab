"""A read-only file system, made real for the commands under test: the warehouse's folder is
bind-mounted read-only onto itself in a private mount namespace (``unshare -rm``: the test's
own, undone when the command exits). ``run``, ``rescore`` and ``digest`` each stop in one line
that names the file and the fix (docs/operations.md), with no traceback, and the warehouse is
unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from tests.helpers import rows
from tests.paths import ROOT

# mount the folder ($1) read-only onto itself, then run the rest of the arguments
READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'


@pytest.mark.usefixtures("prefect_server")
def test_run_rescore_and_digest_on_a_read_only_file_system_stop_in_one_line(
    tmp_path: Path,
) -> None:
    from prefect.settings import PREFECT_API_URL

    assert shutil.which("unshare"), "util-linux's unshare makes the read-only mount"
    folder = tmp_path / "ro"
    db = folder / "w.duckdb"
    assert CliRunner().invoke(cli, ["init", "--db", str(db)]).exit_code == 0
    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feeds]]\nname = "x"\nurl = "http://127.0.0.1:9/feed.xml"\n')
    before = rows(db, "SELECT article_id, title FROM articles ORDER BY 1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSMON_")}
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    commands = (
        ["run", "--db", str(db), "--feeds", str(feeds)],
        ["rescore", "--db", str(db)],
        ["digest", "--db", str(db), "--dry-run", str(folder / "eml")],
    )
    for args in commands:
        out = subprocess.run(
            ["unshare", "-rm", "sh", "-c", READ_ONLY, "sh", str(folder),
             sys.executable, "-m", "newsmon.cli", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        said = f"{args[0]}: {out.stdout}{out.stderr}"
        assert out.returncode == 1, said
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, said
        assert out.stderr.startswith("Error: cannot use "), said
        assert "the file system is read-only" in out.stderr and "Fix: " in out.stderr, said
        assert str(folder) in out.stderr, said  # names the file
    assert rows(db, "SELECT article_id, title FROM articles ORDER BY 1") == before
