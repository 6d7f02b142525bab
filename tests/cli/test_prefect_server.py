"""Prefect's temporary server, started at the beginning of a command (newsmon/prefect_server.py).

The early server must behave as Prefect's own would: flows run against it, the command never
imports the server's code, it is gone when the command ends, and it is not started at all when
Prefect has an API to talk to.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.httpserver import LoopbackHTTPServer
from tests.paths import ROOT

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from newsmon.prefect_server import TemporaryServer

    with TemporaryServer() as server:
        from prefect import flow
        from prefect.settings import PREFECT_API_URL, get_current_settings

        @flow(name="early-server-check")
        def answer() -> int:
            return 42

        server.ready()
        out = {
            "started": server.started,
            "api_url": server.api_url,
            "client_api_url": PREFECT_API_URL.value(),
            "heartbeat": get_current_settings().flows.heartbeat_frequency,
            "result": answer(),
            "server_code_imported": "prefect.server.api.server" in sys.modules,
            "pid": server._process.pid if server._process else None,
        }
        environ = open(f"/proc/{out['pid']}/environ", "rb").read().split(b"\\0")
        out["server_env"] = dict(
            kv.decode().split("=", 1) for kv in environ if kv.startswith(b"PREFECT_SERVER_")
        )
    print(json.dumps(out))
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(extra)
    return env


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_flow_runs_against_the_early_server_which_stops_with_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        # a setting in the environment reaches the server as it is
        env=_env(PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION="true"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["started"] is True
    assert got["client_api_url"] == got["api_url"].rstrip("/")
    assert got["api_url"].startswith("http://127.0.0.1:")
    assert got["result"] == 42
    assert got["heartbeat"] is None  # nobody watches a temporary server's heartbeats
    assert got["server_code_imported"] is False
    assert got["pid"] and not _alive(got["pid"])
    # it registers no block types (nor imports every Prefect integration to do so), unless
    # the environment says otherwise
    assert got["server_env"]["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] == "false"
    assert got["server_env"]["PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION"] == "true"


@pytest.mark.usefixtures("prefect_server")
def test_nothing_is_started_when_prefect_has_an_api() -> None:
    from newsmon.prefect_server import TemporaryServer

    with TemporaryServer() as server:  # the session's test harness set PREFECT_API_URL
        server.ready()
        assert not server.started


CHECK = textwrap.dedent(
    """
    import json
    from newsmon.prefect_server import TemporaryServer

    with TemporaryServer() as s:
        early = s._process.pid if s._process else None
        s.ready()
        from prefect.settings import PREFECT_API_URL

        print(json.dumps({"early": early, "serving": s.started, "api": PREFECT_API_URL.value()}))
    """
)


def _check(cwd: Path, **env: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=cwd,
        env=_env(PYTHONPATH=str(ROOT), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return got


def test_nothing_is_started_when_ephemeral_mode_is_off() -> None:
    got = _check(ROOT, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false")
    assert got == {"early": None, "serving": False, "api": None}


def test_an_api_named_in_prefect_toml_wins_over_the_early_server(tmp_path: Path) -> None:
    """Started before Prefect is imported, the early server cannot know about a prefect.toml:
    once Prefect's settings are read it is stopped, and the flows go to the named API."""
    (tmp_path / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:9/api"\n')
    got = _check(tmp_path)
    assert isinstance(got["early"], int)
    assert got["serving"] is False
    assert got["api"] == "http://127.0.0.1:9/api"
    assert not _alive(got["early"])


def test_newsmon_run_without_a_prefect_server(tmp_path: Path) -> None:
    """The quick start's path: `newsmon run` with no Prefect API, from a fresh process."""
    from tests.hostile.suite import item, page, rss, write_feeds

    with LoopbackHTTPServer() as server:
        server.add("/pages/a.html", page("NATO drone wall"), content_type="text/html")
        server.add(
            "/feed.xml",
            rss(item("NATO drone wall", server.url("/pages/a.html"), "a")),
            content_type="application/rss+xml",
        )
        feeds = write_feeds(tmp_path / "feeds.toml", {"site": server.url("/feed.xml")})
        db = tmp_path / "w.duckdb"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "newsmon.cli",
                "run",
                "--init",
                "--db",
                str(db),
                "--feeds",
                str(feeds),
            ],
            cwd=ROOT,
            env=_env(NEWSMON_ALLOW_PRIVATE_NETWORKS="true"),
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Articles: 1 new" in out.stdout, out.stdout


def test_the_server_goes_when_the_command_is_killed() -> None:
    """A command killed outright (a cron timeout, the OOM killer) leaves no server behind."""
    script = (
        "import time\n"
        "from newsmon.prefect_server import TemporaryServer\n"
        "with TemporaryServer() as s:\n"
        "    print(s._process.pid, flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    server = int(proc.stdout.readline())
    assert _alive(server)
    proc.kill()
    proc.wait(30)
    deadline = time.monotonic() + 30
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server)
