"""Feed autodiscovery: the feed links of a page (pure), and find_feed against pages and feeds
served on 127.0.0.1."""

from __future__ import annotations

import pytest

from newsmon.extractors.discover import MAX_CANDIDATES, FeedLink, feed_links, find_feed
from newsmon.extractors.fetch import FetchOptions
from newsmon.extractors.netguard import AddressPolicy
from newsmon.extractors.reasons import Reason
from tests.httpserver import LoopbackHTTPServer

BASE = "https://news.example/section/page.html"


def test_relative_hrefs_resolve_against_the_page_url() -> None:
    html = """<!doctype html><html><head><title>News</title>
    <link rel="alternate" type="application/rss+xml" title="  All   news " href="../rss.xml">
    <link rel="alternate" type="application/atom+xml" href="/atom.xml#top">
    <link rel="alternate" type="application/atom+xml" href="//cdn.example/feed.atom">
    </head><body></body></html>"""
    assert feed_links(html, BASE) == [
        FeedLink("https://news.example/rss.xml", "All news", "rss"),
        FeedLink("https://news.example/atom.xml", "", "atom"),
        FeedLink("https://cdn.example/feed.atom", "", "atom"),
    ]


def test_base_href_is_used_and_only_the_first_counts() -> None:
    html = """<html><head><base href="/feeds/"><base href="https://other.example/">
    <link rel="alternate" type="application/rss+xml" href="main.xml"></head></html>"""
    assert [f.url for f in feed_links(html, BASE)] == ["https://news.example/feeds/main.xml"]
    not_http = (
        '<base href="javascript:void(0)/"><link rel=alternate type=application/rss+xml href=f>'
    )
    assert [f.url for f in feed_links(not_http, BASE)] == ["https://news.example/section/f"]


def test_rel_tokens_case_and_type_parameters() -> None:
    html = """
    <LINK REL="Home  ALTERNATE" TYPE="Application/RSS+XML; charset=utf-8" HREF="/a.xml">
    <link rel="alternate stylesheet" type="text/css" href="/alt.css">
    <link rel="alternates" type="application/rss+xml" href="/not-a-token.xml">
    <link rel="stylesheet" type="application/rss+xml" href="/wrong-rel.xml">
    <link rel="alternate" type="application/json+oembed" href="/oembed">
    <link rel="alternate" hreflang="fr" href="/fr/">
    """
    assert feed_links(html, BASE) == [FeedLink("https://news.example/a.xml", "", "rss")]


def test_json_feeds_both_media_types() -> None:
    html = """<head>
    <link rel="alternate" type="application/feed+json" href="/feed.json" title="JSON">
    <link rel="alternate" type="application/json" href="/api/feed.json">
    </head>"""
    assert feed_links(html, BASE) == [
        FeedLink("https://news.example/feed.json", "JSON", "json"),
        FeedLink("https://news.example/api/feed.json", "", "json"),
    ]


def test_duplicates_non_http_and_empty_hrefs_are_dropped() -> None:
    html = """
    <link rel="alternate" type="application/rss+xml" href="/rss">
    <link rel="alternate" type="application/atom+xml" href="https://news.example/rss#again">
    <link rel="alternate" type="application/rss+xml" href="feed://news.example/x">
    <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
    <link rel="alternate" type="application/rss+xml" href="file:///etc/passwd">
    <link rel="alternate" type="application/rss+xml" href="   ">
    <link rel="alternate" type="application/rss+xml">
    <link rel="alternate" type="application/rss+xml" href="http://[::1">
    """
    assert feed_links(html, BASE) == [FeedLink("https://news.example/rss", "", "rss")]


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   \n",
        b"\x00\x01\x02\xff\xfe",
        "<<<>>><link rel=alternate<",
        b"%PDF-1.7 binary",
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel/></rss>',
        "<html><head><title>Nothing here</title></head><body><a href=/rss>RSS</a></body></html>",
    ],
)
def test_junk_and_pages_without_feed_links_give_none(junk: str | bytes) -> None:
    assert feed_links(junk, BASE) == []


def test_bytes_are_decoded_by_their_meta_charset() -> None:
    html = (
        '<html><head><meta charset="windows-1251">'
        '<link rel="alternate" type="application/rss+xml" title="Новости" href="/rss">'
    ).encode("cp1251")
    assert feed_links(html, BASE) == [FeedLink("https://news.example/rss", "Новости", "rss")]


def test_junk_around_a_link_still_finds_it() -> None:
    html = b"<p><div><table><link rel=alternate type=application/atom+xml href=/a></td></b></x"
    assert [f.url for f in feed_links(html, BASE)] == ["https://news.example/a"]


# --- find_feed, against 127.0.0.1 -------------------------------------------------------------

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>
<link>https://w.example/</link><item><title>One</title><link>https://w.example/1</link>
<guid>1</guid></item></channel></rss>"""

OPTIONS = FetchOptions(addresses=AddressPolicy(allow_private=True), retries=0, timeout_s=5)


def page(*hrefs: str) -> str:
    links = "".join(f'<link rel="alternate" type="application/rss+xml" href="{h}">' for h in hrefs)
    return f"<!doctype html><html><head>{links}</head><body>Home</body></html>"


def test_a_feed_url_is_its_own_feed(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/rss.xml", RSS, content_type="application/rss+xml")
    found = find_feed(http_server.url("/rss.xml"), OPTIONS)
    assert found.ok and not found.discovered and found.page_url is None
    assert found.feed_url == http_server.url("/rss.xml")
    assert found.poll is not None and found.poll.feed is not None
    assert found.poll.feed.title == "Wire"
    assert http_server.count("/rss.xml") == 1


def test_a_home_page_gives_its_first_answering_feed(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/", page("/gone.xml", "/rss.xml", "/other.xml"), content_type="text/html")
    http_server.add("/gone.xml", status=404)
    http_server.add("/rss.xml", RSS, content_type="application/rss+xml")
    http_server.add("/other.xml", RSS, content_type="application/rss+xml")
    found = find_feed(http_server.url("/"), OPTIONS)
    assert found.discovered
    assert found.feed_url == http_server.url("/rss.xml")
    assert found.page_url == http_server.url("/")
    assert [c.url for c in found.candidates] == [
        http_server.url(p) for p in ("/gone.xml", "/rss.xml", "/other.xml")
    ]
    assert found.message == f"Found {http_server.url('/rss.xml')} on {http_server.url('/')}"
    # the page once, the links concurrently, each once
    assert [http_server.count(p) for p in ("/", "/gone.xml", "/rss.xml", "/other.xml")] == [
        1,
        1,
        1,
        1,
    ]


def test_links_resolve_against_the_page_after_redirects(http_server: LoopbackHTTPServer) -> None:
    http_server.redirect("/home", "/site/index.html")
    http_server.add("/site/index.html", page("feed.xml"), content_type="text/html")
    http_server.add("/site/feed.xml", RSS, content_type="application/rss+xml")
    found = find_feed(http_server.url("/home"), OPTIONS)
    assert found.feed_url == http_server.url("/site/feed.xml")
    assert found.page_url == http_server.url("/site/index.html")


def test_a_page_without_feed_links(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/", page(), content_type="text/html; charset=utf-8")
    found = find_feed(http_server.url("/"), OPTIONS)
    assert not found.ok and found.poll is None and found.candidates == ()
    assert found.reason is Reason.NOT_A_FEED and not found.retryable
    assert found.error == "no feed found: the page links none (<link rel=alternate>)"
    assert found.message == (
        f"no feed found at {http_server.url('/')}: not_a_feed: "
        "no feed found: the page links none (<link rel=alternate>)"
    )


def test_a_page_whose_links_all_fail(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/", page("/a.xml", "/b.xml"), content_type="text/html")
    http_server.add("/a.xml", status=404)
    http_server.add("/b.xml", "<html>moved</html>", content_type="text/html")
    found = find_feed(http_server.url("/"), OPTIONS)
    assert not found.ok and found.reason is Reason.HTTP_4XX and found.http_status is None
    assert found.error == (
        "no feed found: the page links 2 feeds, none answers as one "
        f"({http_server.url('/a.xml')}: http_4xx HTTP 404: HTTP 404 Not Found)"
    )
    assert http_server.count("/b.xml") == 1  # a link is polled, never searched for links


def test_at_most_max_candidates_are_polled(http_server: LoopbackHTTPServer) -> None:
    hrefs = [f"/f{i}.xml" for i in range(MAX_CANDIDATES + 5)]
    http_server.add("/", page("/", *hrefs), content_type="text/html")  # itself first
    found = find_feed(http_server.url("/"), OPTIONS)
    assert len(found.candidates) == MAX_CANDIDATES + 6
    assert sum(http_server.count(h) for h in hrefs) == MAX_CANDIDATES
    assert http_server.count("/") == 1


def test_failures_of_the_url_itself_keep_their_reason(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/missing", status=404)
    http_server.add("/data.json", '{"a": 1}', content_type="application/json")
    missing = find_feed(http_server.url("/missing"), OPTIONS)
    assert (missing.reason, missing.http_status) == (Reason.HTTP_4XX, 404)
    data = find_feed(http_server.url("/data.json"), OPTIONS)
    assert data.reason is Reason.NOT_A_FEED and data.candidates == ()
    assert "JSON" in (data.error or "")


def test_the_address_policy_applies_to_the_page_and_its_links(
    http_server: LoopbackHTTPServer,
) -> None:
    public_only = FetchOptions(retries=0, timeout_s=5)
    refused = find_feed(http_server.url("/"), public_only)
    assert refused.reason is Reason.BLOCKED_ADDRESS and http_server.count("/") == 0
    # private networks allowed, cloud metadata never: a page linking there finds nothing
    http_server.add("/", page("http://169.254.169.254/latest/feed"), content_type="text/html")
    linked = find_feed(http_server.url("/"), OPTIONS)
    assert not linked.ok and linked.reason is Reason.BLOCKED_ADDRESS
