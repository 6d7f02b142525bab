"""What each reader keeps in the reading room, over real HTTP on a copy of the sample warehouse:
read marks (opening an article, mark unread, mark a page read, unread only), saved searches
with their Atom feeds, a subscription's Atom feed, pages read while labels are written, and a
feed added by its site's home page."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import feedparser
import httpx
import pytest

from newsmon.core.settings import Settings, load_feeds
from newsmon.web.app import WebConfig
from newsmon.web.security import Access
from tests.helpers import copy_warehouse, immediate_alerts, rows
from tests.httpserver import LoopbackHTTPServer
from tests.web.room import HOSTILE, SECRET, TOPIC, csrf_of, serving

PROXY = Access(user_header="X-Remote-User")


@pytest.fixture
def db(warehouse: Path, tmp_path: Path) -> Path:
    return copy_warehouse(warehouse, tmp_path)


@pytest.fixture(scope="module")
def site_db(warehouse: Path) -> Iterator[tuple[str, Path]]:
    """The app over the shared sample warehouse, for tests that only read."""
    with serving(WebConfig(warehouse, (TOPIC,), SECRET)) as url:
        yield url, warehouse


def story_classes(html: str) -> list[str]:
    return re.findall(r'<li class="(read|unread)">', html)


def test_reading_an_article_marks_it_read_for_that_reader_only(db: Path) -> None:
    as_ana, as_bo = {"X-Remote-User": "ana"}, {"X-Remote-User": "bo"}
    with (
        serving(WebConfig(db, (TOPIC,), SECRET, PROXY)) as url,
        httpx.Client(base_url=url, headers=as_ana) as ana,
    ):
        listing = ana.get("/", params={"order": "best"}).text
        classes = story_classes(listing)
        assert classes and set(classes) == {"unread"}
        first = re.search(r'<a class="title" href="/articles/([0-9a-f]+)"', listing)
        assert first
        article_id = first.group(1)
        opened = ana.get(f"/articles/{article_id}")
        assert "Mark unread" in opened.text
        assert story_classes(ana.get("/", params={"order": "best"}).text)[0] == "read"
        unread_only = ana.get("/", params={"order": "best", "unread": "1"}).text
        assert len(story_classes(unread_only)) == len(classes) - 1
        assert f"/articles/{article_id}" not in unread_only
        # another reader has read nothing
        assert set(story_classes(httpx.get(f"{url}/", headers=as_bo).text)) == {"unread"}

        # mark it unread again, then the whole page read (back to the same page)
        back = ana.post("/read", data={"csrf": csrf_of(opened.text), "ids": article_id,
                                       "read": "0", "back": f"/articles/{article_id}"})  # fmt: skip
        assert back.status_code == 303 and back.headers["location"] == f"/articles/{article_id}"
        assert rows(db, "SELECT count(*) FROM reads") == [(0,)]
        listing = ana.get("/", params={"unread": "1"}).text
        ids = re.search(r'name="ids" value="([^"]+)"', listing)
        assert ids and ids.group(1).count(",") == len(classes) - 1
        done = ana.post("/read", data={"csrf": csrf_of(listing), "ids": ids.group(1),
                                       "back": "https://evil.example/"})  # fmt: skip
        assert done.headers["location"] == "/"  # never a redirect off the app
        assert story_classes(ana.get("/", params={"unread": "1"}).text) == []
        assert "No story matches" in ana.get("/", params={"unread": "1"}).text
    assert rows(db, "SELECT DISTINCT user_name FROM reads") == [("ana",)]


def test_saved_searches_and_subscriptions_have_atom_feeds(db: Path, tmp_path: Path) -> None:
    alerts = immediate_alerts(tmp_path / "alerts.toml")
    with (
        serving(WebConfig(db, (TOPIC,), SECRET, alerts_path=alerts)) as url,
        httpx.Client(base_url=url) as browser,
    ):
        found = browser.get("/search", params={"q": "NATO", "topic": TOPIC})
        hits = len(re.findall(r'<a class="title"', found.text))
        assert hits
        form = {"csrf": csrf_of(found.text), "q": "NATO", "topic": TOPIC}
        assert browser.post("/searches", data=form | {"name": "../x"}).status_code == 400
        saved = browser.post("/searches", data=form | {"name": "nato-watch"})
        assert saved.status_code == 303
        page = browser.get(saved.headers["location"]).text
        assert "nato-watch" in page and "/searches/nato-watch.atom" in page

        feed = browser.get("/searches/nato-watch.atom")
        assert feed.headers["content-type"].startswith("application/atom+xml")
        parsed = feedparser.parse(feed.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert len(parsed.entries) == hits
        assert all("/articles/" in e.link for e in parsed.entries)
        # another reader's saved search is not theirs to read
        assert browser.get("/searches/nobody.atom").status_code == 404

        sub = feedparser.parse(browser.get("/alerts/flash.atom").content)
        assert not sub.bozo and sub.feed.title == "newsmon alert: flash"
        relevant = rows(db, "SELECT count(DISTINCT coalesce(story_id, article_id)) FROM articles "
                        "JOIN article_matches USING (article_id) WHERE relevant AND score >= 0.5 "
                        "AND NOT is_baseline AND topic = ?", [TOPIC])[0][0]  # fmt: skip
        assert len(sub.entries) == relevant
        assert HOSTILE in [e.title for e in sub.entries]
        assert browser.get("/alerts/nope.atom").status_code == 404

        token = csrf_of(browser.get("/search").text)
        assert browser.post("/searches/nato-watch/delete", data={"csrf": token}).status_code == 303
        assert browser.get("/searches/nato-watch.atom").status_code == 404
    assert rows(db, "SELECT count(*) FROM saved_searches") == [(0,)]


def test_pages_read_while_labels_are_written_in_the_same_app(db: Path) -> None:
    """DuckDB refuses a read-write connection in a process that holds a read-only one on the
    same file: reads and writes inside the app take turns instead of failing."""
    article_ids = [r[0] for r in rows(db, "SELECT article_id FROM articles WHERE NOT is_baseline")]
    with (
        serving(WebConfig(db, (TOPIC,), SECRET, read_wait_s=10)) as url,
        httpx.Client(base_url=url, timeout=30) as browser,
    ):
        token = csrf_of(browser.get("/").text)

        def read(i: int) -> int:
            return browser.get("/" if i % 2 else f"/articles/{article_ids[i % 5]}").status_code

        def label(i: int) -> int:
            return browser.post(
                f"/articles/{article_ids[i]}/label",
                data={"csrf": token, "topic": TOPIC, "verdict": "relevant"},
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            reads = pool.map(read, range(40))
            labels = pool.map(label, range(len(article_ids)))
            assert set(reads) == {200} and set(labels) == {303}
    assert rows(db, "SELECT count(*) FROM labels") == [(len(article_ids),)]


HOME = """<!doctype html><html><head><title>Baltic Defence</title>
<link rel="alternate" type="application/rss+xml" title="Wire" href="/rss.xml"></head></html>"""
RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Baltic Defence Wire</title>
<link>https://baltic.example/</link><item><title>NATO jets</title><link>https://baltic.example/1</link>
</item></channel></rss>"""


def test_a_feed_is_added_from_the_feeds_page_by_its_site_s_home_page(
    db: Path, tmp_path: Path, http_server: LoopbackHTTPServer
) -> None:
    http_server.add("/", HOME, content_type="text/html; charset=utf-8")
    http_server.add("/rss.xml", RSS, content_type="application/rss+xml")
    http_server.add("/about", "<html><head></head></html>", content_type="text/html")
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        '# the operator\'s comment stays\n[[feeds]]\nname = "Old"\nurl = "https://old.example/rss"\n',
        encoding="utf-8",
    )
    settings = Settings.from_env({"NEWSMON_ALLOW_PRIVATE_NETWORKS": "true",
                                  "NEWSMON_HTTP_RETRIES": "0"})  # fmt: skip
    config = WebConfig(db, (TOPIC,), SECRET, feeds_path=feeds, settings=settings)
    with serving(config) as url, httpx.Client(base_url=url) as browser:
        token = csrf_of(browser.get("/feeds").text)
        for bad, words in (
            ("javascript:alert(1)", "http(s) address"),
            (http_server.url("/about"), "the page links none"),
        ):
            refused = browser.post("/feeds", data={"csrf": token, "url": bad})
            assert refused.status_code == 400 and words in refused.text
        assert "old.example" in feeds.read_text() and "Wire" not in feeds.read_text()

        added = browser.post("/feeds", data={"csrf": token, "url": http_server.url("/")})
        assert added.status_code == 303
        page = browser.get(added.headers["location"]).text
        assert f"Added &#39;Baltic Defence Wire&#39;: {http_server.url('/rss.xml')}" in page
        assert f"found on {http_server.url('/')}" in page
        again = browser.post("/feeds", data={"csrf": token, "url": http_server.url("/rss.xml")})
        assert again.status_code == 400 and "already listed" in again.text
    assert [(f.name, f.url) for f in load_feeds(feeds)] == [
        ("Old", "https://old.example/rss"), ("Baltic Defence Wire", http_server.url("/rss.xml")),
    ]  # fmt: skip
    assert feeds.read_text().startswith("# the operator's comment stays")


def test_search_speaks_the_topics_query_language_with_facets(site_db: tuple[str, Path]) -> None:
    url, db = site_db

    def titles(**params: str) -> list[str]:
        page = httpx.get(f"{url}/search", params=params)
        assert page.status_code == 200 and "Traceback" not in page.text
        return [html.unescape(t) for t in re.findall(r'<a class="title" href="[^"]+">([^<]*)</a>',
                                                     page.text)]  # fmt: skip

    plain = titles(q="NATO")
    in_title = titles(q="title:nato")
    elsewhere = titles(q="nato NOT title:nato")
    assert in_title and all(re.search(r"\bNATO\b", t, re.I) for t in in_title)
    assert elsewhere and not any(re.search(r"\bNATO\b", t, re.I) for t in elsewhere)
    assert set(in_title) | set(elsewhere) <= set(plain)
    assert set(titles(q="defen*")) >= set(titles(q="defence"))  # a prefix: its stem's forms too
    assert titles(q="Defen*") == titles(q="defen*")
    # no positive term: the newest articles the query matches
    not_sport = titles(q="NOT (football OR derby)")
    assert not_sport and not any("derby" in t for t in not_sport)
    assert any("derby" in t for t in titles(q="derby"))
    error = httpx.get(f"{url}/search", params={"q": "nato AND (eu"}).text
    assert "search: query" in error and "expected" in error  # the position and what was wanted
    # facets: a language and an outlet
    foreign = "SELECT DISTINCT detected_language FROM articles WHERE detected_language <> 'en'"
    languages = [r[0] for r in rows(db, foreign)]
    assert languages
    other = titles(q="OTAN OR NATO OR EU", language=languages[0])
    in_language = "SELECT title FROM articles WHERE detected_language = ?"
    assert other and set(other) <= {t for (t,) in rows(db, in_language, [languages[0]])}
    (outlet,) = rows(db, "SELECT site_name FROM articles WHERE site_name IS NOT NULL LIMIT 1")[0]
    by_outlet = titles(q="NATO", source=outlet)
    assert by_outlet and set(by_outlet) <= {
        t for (t,) in rows(db, "SELECT title FROM articles WHERE site_name = ?", [outlet])
    }
