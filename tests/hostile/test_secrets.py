"""Credentials: a feed URL with ``user:password@`` (whose relative item links would inherit
them), a failing feed URL with credentials, and NEWSMON_SMTP_PASSWORD set during the runs.

The password appears nowhere: not in any warehouse table (feed URL, item links, article URLs,
final URLs, errors), not in any log record of the runs, not in the run summaries, not in
``newsmon status`` output, not in the Settings' repr.
"""

from __future__ import annotations

from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.core.settings import Settings
from tests.hostile.suite import SECRET_PASSWORD, SMTP_PASSWORD, HostileRun, item, page, rss
from tests.httpserver import LoopbackHTTPServer

SECRETS = (SECRET_PASSWORD, SMTP_PASSWORD)


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    authed = server.base_url.replace("http://", f"http://newsmon:{SECRET_PASSWORD}@")
    server.add(
        "/secret/feed.xml",
        rss(item("Secret article", "/secret/1.html", "s-1")),
        content_type="application/rss+xml",
    )
    server.add("/secret/1.html", page("Secret article"), content_type="text/html")
    return {
        "secret-feed": f"{authed}/secret/feed.xml",
        "secret-missing": f"{authed}/secret/missing.xml",
    }


def _all_text(hostile: HostileRun) -> str:
    tables = [  # every schema: the search index (fts_main_articles) has tables too
        f'"{r[0]}"."{r[1]}"'
        for r in hostile.rows("SELECT table_schema, table_name FROM information_schema.tables")
    ]
    return "\n".join(
        str(value)
        for table in tables
        for row in hostile.rows(f"SELECT * FROM {table}")
        for value in row
    )


def test_credentials_never_stored_logged_or_shown(hostile: HostileRun) -> None:
    assert hostile.feed("secret-feed")[:2] == ("ok", None)
    assert hostile.feed("secret-missing")[:3] == ("failed", "http_4xx", 404)
    [(url, title, _, status, *_)] = hostile.articles("secret-feed")
    assert (url, title, status) == (
        hostile.server.url("/secret/1.html"),
        "Secret article",
        "extracted",
    )
    # the server did see the credentials (Basic auth on the feed request only)
    [feed_request] = hostile.server.requests("/secret/feed.xml")[:1]
    assert feed_request.headers["authorization"].startswith("Basic ")
    assert "authorization" not in hostile.server.requests("/secret/1.html")[0].headers

    stored = _all_text(hostile)
    assert "newsmon:" + SECRET_PASSWORD not in stored and "/secret/feed.xml" in stored
    logs = "\n".join(hostile.log_lines)
    summaries = "\n".join(repr(s) for s in hostile.summaries)
    status = CliRunner().invoke(cli, ["status", "--db", str(hostile.db)])
    assert status.exit_code == 0 and "secret-feed" in status.output
    settings = repr(Settings.from_env({"NEWSMON_SMTP_PASSWORD": SMTP_PASSWORD}))
    for secret in SECRETS:
        for where, text in [
            ("warehouse", stored),
            ("logs", logs),
            ("summaries", summaries),
            ("status", status.output),
            ("settings", settings),
        ]:
            assert secret not in text, where
