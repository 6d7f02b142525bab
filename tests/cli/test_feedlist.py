"""The feed list: OPML import/export round trip, adding and removing feeds without losing
comments, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsmon.cli import cli
from newsmon.core.errors import ConfigError
from newsmon.core.settings import FeedConfig, load_feeds
from newsmon.feedlist import add_feeds, parse_opml, remove_feed, to_opml
from tests.httpserver import LoopbackHTTPServer

FEEDS_TOML = """# my feeds: keep this comment
[[feeds]]
name = "NATO: news"   # the official one
url = "https://www.nato.int/rss.xml"
tags = ["nato", "official"]

[[feeds]]
name = "Europe Desk"
url = "https://europe.example/feed.atom"
language = "fr"
poll_interval_minutes = 30
"""

READER_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Subscriptions from a feed reader</title></head>
  <body>
    <outline text="Defence" title="Defence">
      <outline type="rss" text="Defense News" xmlUrl="https://defense.example/rss" htmlUrl="https://defense.example/"/>
      <outline text="Baltic">
        <outline type="rss" title="ERR News" text="ERR" xmlUrl="https://err.example/rss" category="/estonia"/>
      </outline>
    </outline>
    <outline type="rss" text="Duplicate of Defense News" xmlUrl="https://defense.example/rss"/>
    <outline text="Folder without feeds"/>
  </body>
</opml>
"""  # noqa: E501


@pytest.fixture
def feeds_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.toml"
    path.write_text(FEEDS_TOML, encoding="utf-8")
    return path


def test_opml_round_trip_gives_the_same_feeds(feeds_file: Path, tmp_path: Path) -> None:
    feeds = load_feeds(feeds_file)
    exported = tmp_path / "export.opml"
    exported.write_text(to_opml(feeds), encoding="utf-8")
    back = parse_opml(exported)
    assert [(f.name, f.url, f.tags, f.language) for f in back] == [
        (f.name, f.url, f.tags, f.language) for f in feeds
    ]


def test_import_a_feed_readers_export(tmp_path: Path) -> None:
    path = tmp_path / "reader.opml"
    path.write_text(READER_EXPORT, encoding="utf-8")
    feeds = parse_opml(path)
    assert feeds == [
        FeedConfig("Defense News", "https://defense.example/rss", ("defence",)),
        FeedConfig("ERR News", "https://err.example/rss", ("defence", "baltic", "estonia")),
    ]


def test_add_keeps_comments_and_skips_known_feeds(feeds_file: Path) -> None:
    result = add_feeds(
        feeds_file,
        [
            FeedConfig("ERR News", "https://err.example/rss", ("baltic",), "en"),
            FeedConfig("Again", "https://www.nato.int/rss.xml"),
            FeedConfig("Europe Desk", "https://other.example/rss"),
        ],
    )
    assert [f.name for f in result.added] == ["ERR News"]
    assert [why for _, why in result.skipped] == ["url already listed", "name already used"]
    text = feeds_file.read_text(encoding="utf-8")
    assert text.startswith("# my feeds: keep this comment")
    assert "# the official one" in text
    names = [f.name for f in load_feeds(feeds_file)]
    assert names == ["NATO: news", "Europe Desk", "ERR News"]


def test_remove_by_name_or_url(feeds_file: Path) -> None:
    removed = remove_feed(feeds_file, "https://europe.example/feed.atom")
    assert removed.name == "Europe Desk"
    assert [f.name for f in load_feeds(feeds_file)] == ["NATO: news"]
    assert "# my feeds: keep this comment" in feeds_file.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot remove the last feed"):
        remove_feed(feeds_file, "NATO: news")
    with pytest.raises(ConfigError, match="no feed named 'Nope'"):
        remove_feed(feeds_file, "Nope")


def test_an_invalid_addition_leaves_the_file_alone(feeds_file: Path) -> None:
    before = feeds_file.read_bytes()
    with pytest.raises(ConfigError) as info:
        add_feeds(feeds_file, [FeedConfig("Bad", "gopher://old.example/feed")])
    assert info.value.source == str(feeds_file)
    assert "unsupported scheme" in info.value.problem
    assert feeds_file.read_bytes() == before
    assert not list(feeds_file.parent.glob(".feeds-*"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [("<html><body/></html>", "not an OPML file"), ("<opml><body>", "not valid XML")],
)
def test_not_opml_is_a_clear_error(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "x.opml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        parse_opml(path)


# --- the `newsmon feeds` commands, against a feed served on 127.0.0.1 ---------------------------

RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Baltic Defence Wire</title><link>https://b.example/</link>
<ttl>60</ttl><language>en</language>
<item><title>NATO jets scramble over the Baltic</title><link>https://b.example/1</link>
<guid>1</guid></item>
</channel></rss>"""


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="newsmon")


def test_feeds_check_add_export_import_remove(
    feeds_file: Path,
    tmp_path: Path,
    http_server: LoopbackHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSMON_HTTP_RETRIES", "0")
    http_server.add("/rss.xml", RSS, content_type="application/rss+xml")
    http_server.add("/page.html", "<html><body>not a feed</body></html>", content_type="text/html")
    url = http_server.url("/rss.xml")

    check = run_cli("feeds", "check", url)
    assert check.exit_code == 0, check.output
    assert f"{url}: ok, rss20, 1 entries" in check.output
    assert "every 60 minutes (ttl)" in check.output
    bad = run_cli("feeds", "check", http_server.url("/page.html"))
    assert bad.exit_code == 1 and "failed: not_a_feed" in bad.output

    added = run_cli("feeds", "add", "--feeds", str(feeds_file), url, "--tag", "baltic")
    assert added.exit_code == 0, added.output
    assert "Added 'Baltic Defence Wire'" in added.output
    refused = run_cli("feeds", "add", "--feeds", str(feeds_file), http_server.url("/page.html"))
    assert refused.exit_code == 2 and "not added: not_a_feed" in refused.output
    assert [f.name for f in load_feeds(feeds_file)][-1] == "Baltic Defence Wire"

    opml = tmp_path / "out.opml"
    assert run_cli("feeds", "export", "--feeds", str(feeds_file), str(opml)).exit_code == 0
    seed = '[[feeds]]\nname = "Seed"\nurl = "https://seed.example/rss"\n'
    other, checked = tmp_path / "other.toml", tmp_path / "checked.toml"
    other.write_text(seed, "utf-8")
    checked.write_text(seed, "utf-8")
    imported = run_cli("feeds", "import", "--no-check", "--feeds", str(other), str(opml))
    assert imported.exit_code == 0, imported.output
    assert "3 feeds in" in imported.output and "3 added" in imported.output
    assert [f.url for f in load_feeds(other)][1:] == [f.url for f in load_feeds(feeds_file)]
    # checked by default: the two feeds on hosts that do not resolve here are left out
    with_check = run_cli("feeds", "import", "--feeds", str(checked), str(opml))
    assert with_check.exit_code == 0, with_check.output
    assert "1 added, 0 already listed, 2 refused or not answering as feeds" in with_check.output
    assert "import: feeds checked: 3/3" in with_check.stderr
    assert [f.name for f in load_feeds(checked)] == ["Seed", "Baltic Defence Wire"]

    removed = run_cli("feeds", "remove", "--feeds", str(feeds_file), "Baltic Defence Wire")
    assert removed.exit_code == 0 and "Removed 'Baltic Defence Wire'" in removed.output


def test_a_strangers_opml_cannot_name_local_files(tmp_path: Path) -> None:
    """An OPML reading list from someone else naming a local file (a private token) or a FIFO:
    import refuses every entry that is not an http(s) URL; feeds add does the same."""
    import os

    secret = tmp_path / "token.txt"
    secret.write_text("s3cr3t", encoding="utf-8")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    opml = tmp_path / "shared.opml"
    opml.write_text(
        '<opml version="2.0"><body>'
        f'<outline text="Token" xmlUrl="{secret}"/>'
        f'<outline text="Pipe" xmlUrl="file://{fifo}"/>'
        '<outline text="Real" xmlUrl="https://real.example/rss"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    feeds_file = tmp_path / "feeds.toml"
    feeds_file.write_text('[[feeds]]\nname = "Seed"\nurl = "https://seed.example/rss"\n', "utf-8")
    result = run_cli("feeds", "import", "--no-check", "--feeds", str(feeds_file), str(opml))
    assert result.exit_code == 0, result.output
    assert "1 added, 0 already listed, 2 refused" in result.output
    assert "skipped 'Token': not an http(s) URL" in result.output
    assert [f.url for f in load_feeds(feeds_file)] == [
        "https://seed.example/rss",
        "https://real.example/rss",
    ]
    added = run_cli("feeds", "add", "--feeds", str(feeds_file), str(secret))
    assert added.exit_code == 2 and "only http(s) feeds can be added" in added.output


def test_a_fifo_in_the_operators_feeds_file_fails_at_once(tmp_path: Path) -> None:
    """Even from the operator's own file, a local feed must be a regular file: a FIFO used to
    block the run until someone wrote to it."""
    import os

    from newsmon.extractors.fetch import FetchOptions, FetchRequest, fetch_batch

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    [result] = fetch_batch([FetchRequest(str(fifo))], FetchOptions())  # used to block here
    assert (result.status.value, result.reason.value if result.reason else None) == (
        "failed",
        "file_error",
    )
    assert "not a regular file" in (result.error or "")
    [folder] = fetch_batch([FetchRequest(str(tmp_path))], FetchOptions())
    assert "not a regular file" in (folder.error or "")


HOME = """<!doctype html><html><head><title>Baltic Defence</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Baltic Defence Wire" href="/rss.xml">
</head><body><h1>Baltic Defence</h1></body></html>"""


def test_feeds_add_and_check_by_home_page(
    feeds_file: Path, http_server: LoopbackHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site's home page stands for the feed it links (<link rel="alternate">); a page that
    links none is refused in one line and the file is left alone; a feed URL is as before."""
    monkeypatch.setenv("NEWSMON_HTTP_RETRIES", "0")
    http_server.add("/", HOME, content_type="text/html; charset=utf-8")
    http_server.add("/rss.xml", RSS, content_type="application/rss+xml")
    http_server.add(
        "/about", "<html><head><title>About</title></head></html>", content_type="text/html"
    )
    home, feed, about = http_server.url("/"), http_server.url("/rss.xml"), http_server.url("/about")

    check = run_cli("feeds", "check", home)
    assert check.exit_code == 0, check.output
    assert check.output.splitlines()[:2] == [
        f"Found {feed} on {home}",
        f"{feed}: ok, rss20, 1 entries",
    ]
    unchanged = run_cli("feeds", "check", feed)
    assert unchanged.exit_code == 0 and unchanged.output.startswith(f"{feed}: ok, rss20, 1 entries")
    none = run_cli("feeds", "check", about)
    assert (none.exit_code, none.output) == (
        1,
        f"{about}: failed: not_a_feed: no feed found: the page links none (<link rel=alternate>)\n",
    )

    before = feeds_file.read_bytes()
    refused = run_cli("feeds", "add", "--feeds", str(feeds_file), about)
    assert (refused.exit_code, refused.output) == (
        2,
        f"Error: {about}: not added: not_a_feed: no feed found: the page links none "
        "(<link rel=alternate>). Fix: check the URL\n",
    )
    assert feeds_file.read_bytes() == before

    added = run_cli("feeds", "add", "--feeds", str(feeds_file), home, "--tag", "baltic")
    assert added.exit_code == 0, added.output
    assert added.output == (
        f"Found {feed} on {home}\nAdded 'Baltic Defence Wire' ({feed}) to {feeds_file}.\n"
    )
    assert load_feeds(feeds_file)[-1] == FeedConfig("Baltic Defence Wire", feed, ("baltic",))
    again = run_cli("feeds", "add", "--feeds", str(feeds_file), feed)
    assert again.exit_code == 0
    assert again.output == f"Not added 'Baltic Defence Wire': url already listed in {feeds_file}.\n"
    assert http_server.count("/") == 2 and http_server.count("/about") == 2
