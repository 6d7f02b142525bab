"""The benchmark's corpus server (benchmarks/server.py) answers as the issue asks: one site per
feed, every request after the latency, ETag / Last-Modified with 304s, requests counted; and as
HTTP/1.1 clients expect (keep-alive, HEAD, Connection: close, errors)."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from benchmarks.corpus import CorpusSpec, PageInfo, write_corpus
from benchmarks.server import CorpusServer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[PageInfo]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, write_corpus(CorpusSpec(feeds=2, items=2, seed=1), root)


@pytest.fixture
def server(corpus: tuple[Path, list[PageInfo]]) -> Iterator[CorpusServer]:
    with CorpusServer(corpus[0], latency_s=0) as s:
        yield s


def _site(server: CorpusServer, feed: int) -> http.client.HTTPConnection:
    parts = urlsplit(server.feed_urls[feed])
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    return http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)


def test_feeds_and_pages_with_validators_on_one_kept_alive_connection(
    server: CorpusServer, corpus: tuple[Path, list[PageInfo]]
) -> None:
    root, pages = corpus
    page = next(p for p in pages if p.feed == 1)
    site = _site(server, 1)

    site.request("GET", "/feed.xml")
    feed = site.getresponse()
    body = feed.read()
    assert feed.status == 200
    assert feed.getheader("Content-Type") == "application/rss+xml"
    assert feed.getheader("ETag") == '"feed-1-v1"'
    base = server.feed_urls[1].removesuffix("/feed.xml")
    assert f"{base}{page.path}".encode() in body and b"{{BASE}}" not in body

    site.request("GET", page.path)  # the same connection
    answer = site.getresponse()
    html = answer.read()
    assert answer.status == 200
    assert html == (root / "pages" / page.path.lstrip("/")).read_bytes()
    assert answer.getheader("Content-Length") == str(len(html))
    assert answer.getheader("Content-Type") == "text/html; charset=utf-8"
    assert (answer.getheader("ETag"), answer.getheader("Last-Modified")) == (
        page.etag,
        page.last_modified,
    )
    assert site.sock is not None  # still open: HTTP/1.1 keeps it alive
    site.close()
    assert server.counts() == {"feed_200": 1, "page_200": 1}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"If-None-Match": "{etag}"}, 304),
        ({"If-None-Match": '"other", W/{etag}'}, 304),  # weak tags compare equal
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"other"'}, 200),
        ({"If-Modified-Since": "{last_modified}"}, 304),
        ({"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 200),
        # If-None-Match wins over If-Modified-Since
        ({"If-None-Match": '"other"', "If-Modified-Since": "{last_modified}"}, 200),
    ],
)
def test_conditional_requests(
    server: CorpusServer,
    corpus: tuple[Path, list[PageInfo]],
    headers: dict[str, str],
    status: int,
) -> None:
    page = corpus[1][0]
    site = _site(server, page.feed)
    values = {"etag": page.etag, "last_modified": page.last_modified}
    site.request("GET", page.path, headers={k: v.format(**values) for k, v in headers.items()})
    answer = site.getresponse()
    body = answer.read()
    assert answer.status == status
    assert answer.getheader("ETag") == page.etag
    assert (body == b"") == (status == 304)
    assert server.counts() == {f"page_{status}": 1}


def test_head_unknown_paths_other_methods_and_connection_close(
    server: CorpusServer, corpus: tuple[Path, list[PageInfo]]
) -> None:
    page = corpus[1][0]
    site = _site(server, page.feed)
    site.request("HEAD", page.path)
    head = site.getresponse()
    assert head.status == 200 and head.read() == b""
    assert head.getheader("Content-Length") == str(
        len((corpus[0] / "pages" / page.path.lstrip("/")).read_bytes())
    )
    site.request("GET", "/nowhere?x=1")
    missing = site.getresponse()
    assert (missing.status, missing.read()) == (404, b"not found")
    site.request("DELETE", page.path)
    refused = site.getresponse()
    assert refused.status == 501 and refused.read() == b""
    site.request("GET", page.path, headers={"Connection": "close"})
    last = site.getresponse()
    assert last.status == 200 and len(last.read()) > 0
    assert last.will_close
    assert server.counts() == {"other_404": 1, "other_501": 1, "page_200": 2}
    server.reset_counts()
    assert server.counts() == {}


def test_a_request_that_is_not_http_is_answered_400_and_closed(server: CorpusServer) -> None:
    port = urlsplit(server.feed_urls[0]).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"hello there\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):  # until the server closes
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert server.counts() == {}


def test_every_answer_waits_for_the_latency(corpus: tuple[Path, list[PageInfo]]) -> None:
    with CorpusServer(corpus[0], latency_s=0.3) as server:
        site = _site(server, 0)
        for _ in range(2):  # each request on a kept-alive connection waits again
            started = time.monotonic()
            site.request("GET", "/feed.xml")
            answer = site.getresponse()
            answer.read()
            assert answer.status == 200
            assert time.monotonic() - started >= 0.25  # a lower bound: never early
        site.close()
