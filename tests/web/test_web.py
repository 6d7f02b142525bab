"""The reading room over real HTTP (uvicorn on 127.0.0.1), on a warehouse filled by a real ingest
of the bundled sample: its pages, labels with their CSRF protection, search, feeds, the Atom
feed, who may use it, hostile titles, and a warehouse an ingest holds."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
from click.testing import CliRunner

from newsmon.cli import cli
from newsmon.web.app import WebConfig
from newsmon.web.security import Access, hash_password
from tests.helpers import rows
from tests.web.room import HOSTILE, SECRET, TOPIC, csrf_of, serving


@pytest.fixture(scope="module")
def site(warehouse: Path) -> Iterator[str]:
    with serving(WebConfig(warehouse, (TOPIC,), SECRET)) as url:
        yield url


def _relevant_ids(db: Path) -> list[str]:
    return [
        r[0]
        for r in rows(
            db,
            "SELECT article_id FROM article_matches JOIN articles USING (article_id) "
            "WHERE relevant AND NOT is_baseline ORDER BY article_id",
        )
    ]


def test_stories_list_the_relevant_stories_escaped_with_security_headers(
    site: str, warehouse: Path
) -> None:
    answer = httpx.get(f"{site}/?topic={TOPIC}")
    assert answer.status_code == 200
    html = answer.text
    titles = [t for (t,) in rows(warehouse, "SELECT title FROM articles WHERE NOT is_baseline")]
    stories = rows(warehouse, "SELECT count(DISTINCT coalesce(story_id, article_id)) FROM "
                   "articles JOIN article_matches USING (article_id) WHERE relevant AND "
                   "NOT is_baseline AND topic = ?", [TOPIC])[0][0]  # fmt: skip
    assert f"{stories} stories" in html
    assert html.count('class="title"') == stories
    assert "<script>" not in html and "&lt;script&gt;alert(" in html  # the hostile title
    assert any(t and t in html for t in titles if "<" not in t)
    headers = answer.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]  # no script at all
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "samesite=strict" in headers["set-cookie"].lower()


def test_an_article_says_why_it_matched_and_a_click_records_a_label(
    site: str, warehouse: Path
) -> None:
    article_id = _relevant_ids(warehouse)[-1]
    with httpx.Client(base_url=site) as browser:
        page = browser.get(f"/articles/{article_id}")
        assert page.status_code == 200
        assert "Why it matched" in page.text and "match" in page.text
        answer = browser.post(
            f"/articles/{article_id}/label",
            data={"csrf": csrf_of(page.text), "topic": TOPIC, "verdict": "not_relevant"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/articles/{article_id}?labelled=not_relevant"
        assert "Recorded: not relevant" in browser.get(answer.headers["location"]).text
    assert rows(
        warehouse, "SELECT topic, relevant, labelled_by FROM labels WHERE article_id = ?",
        [article_id],
    ) == [(TOPIC, False, "local")]  # fmt: skip


def test_forged_posts_and_labels_for_nothing_record_nothing(site: str, warehouse: Path) -> None:
    article_id = _relevant_ids(warehouse)[0]
    before = rows(warehouse, "SELECT count(*) FROM labels")
    form = {"topic": TOPIC, "verdict": "relevant"}
    with httpx.Client(base_url=site) as browser:
        token = csrf_of(browser.get(f"/articles/{article_id}").text)
        target = f"/articles/{article_id}/label"
        assert browser.post(target, data=form).status_code == 403  # no token
        assert browser.post(target, data=form | {"csrf": token + "x"}).status_code == 403
        cross = browser.post(
            target, data=form | {"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert cross.status_code == 403
        missing = browser.post("/articles/no-such-article/label", data=form | {"csrf": token})
        assert missing.status_code == 404 and "nothing was recorded" in missing.text
    # another visitor's token (another cookie) does not work with this one's cookie
    with httpx.Client(base_url=site) as stranger:
        stranger.get("/")
        assert stranger.post(target, data=form | {"csrf": token}).status_code == 403
    assert rows(warehouse, "SELECT count(*) FROM labels") == before


def test_search_feeds_and_the_atom_feed(site: str, warehouse: Path) -> None:
    found = httpx.get(f"{site}/search", params={"q": "NATO"})
    assert found.status_code == 200 and "result" in found.text
    assert re.search(r'href="/articles/[0-9a-f]+"', found.text)
    bad = httpx.get(f"{site}/search", params={"q": '"unclosed'})
    assert bad.status_code == 200 and "Traceback" not in bad.text

    feeds = httpx.get(f"{site}/feeds")
    names = [n for (n,) in rows(warehouse, "SELECT name FROM feeds")]
    assert feeds.status_code == 200 and names and all(n in feeds.text for n in names)

    atom = httpx.get(f"{site}/topics/{TOPIC}.atom")
    assert atom.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    stories = rows(warehouse, "SELECT count(DISTINCT coalesce(story_id, article_id)) FROM "
                   "articles JOIN article_matches USING (article_id) WHERE relevant AND "
                   "NOT is_baseline AND topic = ?", [TOPIC])[0][0]  # fmt: skip
    assert len(parsed.entries) == stories
    assert HOSTILE in [e.title for e in parsed.entries]  # escaped XML, read back as the text
    assert httpx.get(f"{site}/topics/nope.atom").status_code == 404


def test_bad_addresses_get_a_page_not_a_traceback_or_json(site: str) -> None:
    for path, status, words in (
        ("/?min_score=lots", 400, "bad value for: min_score"),
        ("/?page_no=-5&per_page=7&since=garbage&order=worst", 200, "stories"),
        ("/no/such/page", 404, "No such page"),
        ("/articles/%3Cscript%3E", 404, "No such article"),
    ):
        answer = httpx.get(f"{site}{path}")
        assert answer.status_code == status, (path, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html"), path
        assert words in answer.text and "Traceback" not in answer.text, path
        assert "default-src 'none'" in answer.headers["content-security-policy"], path


def test_users_sign_in_and_a_proxy_header_is_trusted_only_when_turned_on(
    warehouse: Path,
) -> None:
    users = Access(users={"ana": hash_password("correct horse")})
    with serving(WebConfig(warehouse, (TOPIC,), SECRET, users)) as url:
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, auth=("ana", "wrong")).status_code == 401
        assert httpx.get(url, auth=("ana", "correct horse")).status_code == 200
    proxy = Access(user_header="X-Remote-User")
    with serving(WebConfig(warehouse, (TOPIC,), SECRET, proxy)) as url:
        assert httpx.get(url).status_code == 401
        signed = httpx.get(url, headers={"X-Remote-User": "bo"})
        assert signed.status_code == 200 and ">bo<" in signed.text


def test_listening_beyond_this_machine_without_authentication_is_refused(
    warehouse: Path,
) -> None:
    out = CliRunner().invoke(cli, ["web", "--db", str(warehouse), "--host", "0.0.0.0"])
    assert out.exit_code == 2
    assert out.output.count("\n") == 1 and "Traceback" not in out.output
    assert "needs authentication" in out.output and "NEWSMON_WEB_USERS" in out.output


def test_while_an_ingest_holds_the_warehouse_pages_say_busy_and_a_label_is_not_lost_silently(
    warehouse: Path, tmp_path: Path
) -> None:
    article_id = _relevant_ids(warehouse)[0]
    config = WebConfig(warehouse, (TOPIC,), SECRET, read_wait_s=0.5)
    with serving(config) as url, httpx.Client(base_url=url) as browser:
        token = csrf_of(browser.get(f"/articles/{article_id}").text)
        holder = subprocess.Popen(
            [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
             " print('held', flush=True); time.sleep(60)", str(warehouse)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert holder.stdout and holder.stdout.readline().strip() == "held"
            busy = browser.get("/")
            assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
            assert "busy" in busy.text
            label = browser.post(
                f"/articles/{article_id}/label",
                data={"csrf": token, "topic": TOPIC, "verdict": "relevant"},
            )
            assert label.status_code == 503 and "NOT saved" in label.text
            assert "Try again" in label.text  # the same verdict, one click away
        finally:
            holder.kill()
            holder.wait()
        assert browser.get("/").status_code == 200
