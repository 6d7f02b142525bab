"""newsmon.extractors.fetch against a real loopback HTTP server (tests/httpserver.py)."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsmon.extractors.fetch import (
    FetchOptions,
    FetchRequest,
    FetchResult,
    FetchStatus,
    fetch_all,
    fetch_batch,
)
from newsmon.extractors.netguard import AddressPolicy
from newsmon.extractors.reasons import Reason
from tests.httpserver import LoopbackHTTPServer, Reply, closed_port

# the server is on 127.0.0.1, which newsmon refuses by default (tests/hostile/test_ssrf.py)
LOCAL = AddressPolicy(allow_private=True)


def local_options(**kwargs: Any) -> FetchOptions:
    return FetchOptions(addresses=LOCAL, **kwargs)


# small timeouts and backoffs keep the whole file fast
FAST = local_options(timeout_s=1.0, deadline_s=3.0, retries=2, backoff_s=0.01, max_bytes=100_000)
LM = "Mon, 01 Jan 2024 00:00:00 GMT"


def fetch_one(req: FetchRequest | str, options: FetchOptions = FAST) -> FetchResult:
    [result] = fetch_batch([req], options)
    return result


def test_ok_body_headers_and_user_agent(http_server: LoopbackHTTPServer) -> None:
    http_server.add(
        "/feed.xml", b"<rss/>", content_type="application/rss+xml", etag='"v1"', last_modified=LM
    )
    r = fetch_one(http_server.url("/feed.xml"))
    assert r.status is FetchStatus.OK and r.reason is None and r.error is None
    assert r.content == b"<rss/>"
    assert r.http_status == 200
    assert r.content_type == "application/rss+xml"
    assert (r.etag, r.last_modified) == ('"v1"', LM)
    assert r.final_url == r.url == http_server.url("/feed.xml")
    assert r.attempts == 1 and r.duration_s >= 0
    [sent] = http_server.requests("/feed.xml")
    assert sent.headers["user-agent"] == FAST.user_agent
    assert "if-none-match" not in sent.headers and "if-modified-since" not in sent.headers


def test_conditional_get_not_modified(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/feed.xml", b"<rss/>", etag='"v1"', last_modified=LM)
    url = http_server.url("/feed.xml")
    by_etag, by_date, changed = fetch_batch(
        [
            FetchRequest(url, etag='"v1"'),
            FetchRequest(url, last_modified=LM),
            FetchRequest(url, etag='"v0"'),
        ],
        FAST,
    )
    assert by_etag.status is FetchStatus.NOT_MODIFIED and by_etag.http_status == 304
    assert by_etag.content == b"" and by_etag.etag == '"v1"' and by_etag.reason is None
    assert by_date.status is FetchStatus.NOT_MODIFIED and by_date.last_modified == LM
    assert changed.status is FetchStatus.OK and changed.content == b"<rss/>"
    sent = [req.headers for req in http_server.requests("/feed.xml")]
    assert sorted(h.get("if-none-match", "") for h in sent) == ["", '"v0"', '"v1"']
    assert sum(h.get("if-modified-since") == LM for h in sent) == 1


def test_404_is_http_4xx_without_retry(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/gone", status=404)
    r = fetch_one(http_server.url("/gone"))
    assert (r.status, r.reason, r.http_status) == (FetchStatus.FAILED, Reason.HTTP_4XX, 404)
    assert r.attempts == 1 and http_server.count("/gone") == 1
    assert r.content == b"" and r.error is not None and "404" in r.error


def test_500_is_http_5xx_after_retries(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/broken", status=500)
    r = fetch_one(http_server.url("/broken"))
    assert (r.reason, r.http_status) == (Reason.HTTP_5XX, 500)
    assert r.attempts == FAST.retries + 1 == http_server.count("/broken")


def test_503_then_200_succeeds_on_retry(http_server: LoopbackHTTPServer) -> None:
    http_server.add_sequence(
        "/flaky", [Reply(status=503, headers={"Retry-After": "0"}), Reply(body=b"fine")]
    )
    r = fetch_one(http_server.url("/flaky"))
    assert r.status is FetchStatus.OK and r.content == b"fine"
    assert r.attempts == 2 == http_server.count("/flaky")


def test_429_retry_after_within_cap_is_retried(http_server: LoopbackHTTPServer) -> None:
    http_server.add_sequence(
        "/limited", [Reply(status=429, headers={"Retry-After": "0"}), Reply(body=b"ok")]
    )
    r = fetch_one(http_server.url("/limited"))
    assert r.status is FetchStatus.OK and r.attempts == 2


def test_429_retry_after_beyond_cap_is_reported_not_waited(
    http_server: LoopbackHTTPServer,
) -> None:
    http_server.add("/limited", status=429, headers={"Retry-After": "3600"})
    r = fetch_one(http_server.url("/limited"))
    assert (r.reason, r.http_status, r.retry_after_s) == (Reason.HTTP_4XX, 429, 3600.0)
    assert r.attempts == 1


def test_read_timeout(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/slow", b"late", delay_s=3)
    opts = local_options(timeout_s=0.3, deadline_s=5, retries=1, backoff_s=0.01)
    r = fetch_one(http_server.url("/slow"), opts)
    assert r.reason is Reason.TIMEOUT and r.status is FetchStatus.FAILED
    assert r.attempts == 2  # a timeout is transient


def test_total_deadline_stops_a_drip(http_server: LoopbackHTTPServer) -> None:
    # each byte arrives well within the read timeout; only the total deadline can stop this
    http_server.add("/drip", b"x" * 100, drip_s=0.2)
    opts = local_options(timeout_s=2, deadline_s=0.8, retries=0)
    start = time.monotonic()
    r = fetch_one(http_server.url("/drip"), opts)
    assert r.reason is Reason.TIMEOUT and r.error is not None and "deadline" in r.error
    assert time.monotonic() - start < 10  # returned; not a timing assertion


def test_redirects_followed(http_server: LoopbackHTTPServer) -> None:
    http_server.redirect("/old", "/middle", status=301)
    http_server.redirect("/middle", http_server.url("/new"), status=307)
    http_server.add("/new", b"moved here", etag='"n"')
    r = fetch_one(FetchRequest(http_server.url("/old"), etag='"x"'))
    assert r.status is FetchStatus.OK and r.content == b"moved here"
    assert r.url == http_server.url("/old") and r.final_url == http_server.url("/new")
    assert http_server.requests("/new")[0].headers["if-none-match"] == '"x"'


def test_redirect_loop_is_too_many_redirects(http_server: LoopbackHTTPServer) -> None:
    http_server.redirect("/a", "/b")
    http_server.redirect("/b", "/a")
    opts = local_options(max_redirects=3, retries=2, timeout_s=1)
    r = fetch_one(http_server.url("/a"), opts)
    assert r.reason is Reason.TOO_MANY_REDIRECTS and r.attempts == 1
    assert http_server.count("/a") + http_server.count("/b") == 4  # first request + 3 redirects


def test_redirect_to_file_scheme_is_bad_url(http_server: LoopbackHTTPServer) -> None:
    http_server.redirect("/evil", "file:///etc/passwd")
    r = fetch_one(http_server.url("/evil"))
    assert r.reason is Reason.BAD_URL and r.content == b"" and r.attempts == 1


@pytest.mark.parametrize("content_length", [True, False], ids=["declared", "chunked"])
def test_oversized_body_is_too_large(http_server: LoopbackHTTPServer, content_length: bool) -> None:
    http_server.add("/big", b"x" * 5000, content_length=content_length)
    r = fetch_one(http_server.url("/big"), local_options(max_bytes=1000, retries=2))
    assert r.reason is Reason.TOO_LARGE and r.content == b"" and r.attempts == 1
    sent = http_server.requests("/big")[0].headers
    assert "chunked" not in sent.get("transfer-encoding", "")  # the request itself is plain


def test_body_at_the_limit_is_ok(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/exact", b"x" * 1000, content_length=False)
    r = fetch_one(http_server.url("/exact"), local_options(max_bytes=1000))
    assert r.status is FetchStatus.OK and len(r.content) == 1000


def test_gzip_body_is_decoded(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/gz", b"<rss>" + b"a" * 5000 + b"</rss>", gzip=True)
    r = fetch_one(http_server.url("/gz"))
    assert r.status is FetchStatus.OK and r.content == b"<rss>" + b"a" * 5000 + b"</rss>"
    assert "gzip" in http_server.requests("/gz")[0].headers["accept-encoding"]


def test_gzip_bomb_is_too_large(http_server: LoopbackHTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    assert len(bomb) < 100_000  # small on the wire: only the decoded size can catch it
    http_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    r = fetch_one(http_server.url("/bomb"), local_options(max_bytes=100_000))
    assert r.reason is Reason.TOO_LARGE and r.attempts == 1


def test_truncated_body_is_connection_error(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/cut", b"x" * 1000, truncate_at=10)
    r = fetch_one(http_server.url("/cut"), local_options(retries=1, backoff_s=0.01))
    assert r.reason is Reason.CONNECTION and r.attempts == 2


def test_refused() -> None:
    r = fetch_one(f"http://127.0.0.1:{closed_port()}/", local_options(retries=0))
    assert r.reason is Reason.REFUSED and r.http_status is None


def test_dns_failure_and_no_credentials_in_error() -> None:
    r = fetch_one("http://user:s3cret@newsmon-test.invalid/feed", local_options(retries=0))
    assert r.reason is Reason.DNS
    assert r.error is not None and "s3cret" not in r.error


@pytest.mark.parametrize("url", ["", "ftp://example.org/feed", "http:///nohost", "mailto:x@y"])
def test_unusable_urls_are_bad_url(url: str) -> None:
    r = fetch_one(url)
    assert r.reason is Reason.BAD_URL and r.attempts == 1


def test_local_files(tmp_path: Path) -> None:
    plain = tmp_path / "feed.xml"
    plain.write_bytes(b"<rss>plain</rss>")
    packed = tmp_path / "feed.xml.gz"
    packed.write_bytes(gzip.compress(b"<rss>packed</rss>"))
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2000)
    bomb = tmp_path / "bomb.gz"
    bomb.write_bytes(gzip.compress(b"\0" * 1_000_000))
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    urls = [
        str(plain),
        plain.as_uri(),
        str(packed),
        str(tmp_path / "missing.xml"),
        str(big),
        str(bomb),
        str(corrupt),
        str(tmp_path),  # a directory
    ]
    res = fetch_batch(urls, local_options(max_bytes=1000))
    assert [r.url for r in res] == urls
    assert res[0].content == res[1].content == b"<rss>plain</rss>"
    assert res[0].content_type is not None and "xml" in res[0].content_type
    assert res[2].content == b"<rss>packed</rss>" and res[2].status is FetchStatus.OK
    assert [r.reason for r in res[3:]] == [
        Reason.FILE_ERROR,
        Reason.TOO_LARGE,
        Reason.TOO_LARGE,
        Reason.FILE_ERROR,
        Reason.FILE_ERROR,
    ]
    assert all(r.attempts == 1 for r in res)


def test_per_host_concurrency_bound(http_server: LoopbackHTTPServer) -> None:
    for i in range(6):
        http_server.add(f"/p{i}", b"x", delay_s=1.0)  # each wave overlaps, even on a busy host
    urls = [http_server.url(f"/p{i}") for i in range(6)]
    res = fetch_batch(urls, local_options(per_host=2, max_concurrency=10))
    assert all(r.ok for r in res)
    assert http_server.max_in_flight == 2


def test_total_concurrency_bound(http_server: LoopbackHTTPServer) -> None:
    for i in range(6):
        http_server.add(f"/p{i}", b"x", delay_s=1.0)  # each wave overlaps, even on a busy host
    urls = [http_server.url(f"/p{i}") for i in range(6)]
    res = fetch_batch(urls, local_options(per_host=10, max_concurrency=3))
    assert all(r.ok for r in res)
    assert http_server.max_in_flight == 3


def test_mixed_batch_keeps_order_and_never_raises(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/ok", b"ok")
    http_server.add("/nf", status=404)
    urls = [
        http_server.url("/ok"),
        "not a url at all",
        http_server.url("/nf"),
        "gopher://x/",
        http_server.url("/ok"),
    ]
    res = fetch_batch(urls, FAST)
    assert [r.url for r in res] == urls
    assert [r.reason for r in res] == [
        None,
        Reason.FILE_ERROR,  # no scheme: read as a local path, which does not exist
        Reason.HTTP_4XX,
        Reason.BAD_URL,
        None,
    ]
    assert fetch_batch([]) == []


def test_fetch_all_and_fetch_batch_inside_a_running_loop(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/ok", b"ok")
    url = http_server.url("/ok")

    async def main() -> tuple[list[FetchResult], list[FetchResult]]:
        direct = await fetch_all([FetchRequest(url)], FAST)
        nested = fetch_batch([url], FAST)  # a loop is running: fetch_batch uses a helper thread
        return direct, nested

    direct, nested = asyncio.run(main())
    assert direct[0].content == nested[0].content == b"ok"


@pytest.mark.parametrize("kind", ["zlib", "raw-deflate", "gzip-members"])
def test_other_encodings_are_decoded(http_server: LoopbackHTTPServer, kind: str) -> None:
    text = b"<html>" + b"news " * 500 + b"</html>"
    if kind == "zlib":
        body, coding = zlib.compress(text), "deflate"
    elif kind == "raw-deflate":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, coding = packer.compress(text) + packer.flush(), "deflate"
    else:
        body, coding = gzip.compress(text[:100]) + gzip.compress(text[100:]), "gzip"
    http_server.add("/enc", body, headers={"Content-Encoding": coding})
    r = fetch_one(http_server.url("/enc"))
    assert r.status is FetchStatus.OK and r.content == text


def test_retry_after_http_date_is_parsed(http_server: LoopbackHTTPServer) -> None:
    later = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    http_server.add("/busy", status=503, headers={"Retry-After": later})
    r = fetch_one(http_server.url("/busy"))
    assert r.reason is Reason.HTTP_5XX and r.attempts == 1  # longer than max_retry_after_s
    assert r.retry_after_s is not None and 3500 < r.retry_after_s <= 3600


def test_a_proxy_from_the_environment_carries_the_requests(
    http_server: LoopbackHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the test server plays the proxy: it is asked for absolute URLs
    http_server.add("http://news.invalid/a.html", b"<html>via the proxy</html>")
    http_server.add("/internal", b"secret")
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    proxy = f"127.0.0.1:{http_server.port}"  # no scheme: an HTTP proxy, as curl reads it
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    public_only = FetchOptions(retries=0, timeout_s=5, deadline_s=10)

    r = fetch_one("http://news.invalid/a.html", public_only)
    assert r.ok and r.content == b"<html>via the proxy</html>", r.error
    assert http_server.count("http://news.invalid/a.html") == 1
    # the proxy resolves names, so only literal addresses can be checked: refused before asking
    for literal in ("http://10.0.0.1/x", "http://2130706433/x", "http://0x7f.1/x"):
        assert fetch_one(literal, public_only).reason is Reason.BLOCKED_ADDRESS, literal
    assert sum(http_server.counts().values()) == 1

    # a host in NO_PROXY is connected to directly, so its resolved address is checked
    monkeypatch.setenv("NO_PROXY", "localhost")
    monkeypatch.setenv("no_proxy", "localhost")
    direct = fetch_one(f"http://localhost:{http_server.port}/internal", public_only)
    assert direct.reason is Reason.BLOCKED_ADDRESS, direct.error
    assert http_server.count("/internal") == 0 and sum(http_server.counts().values()) == 1


def test_a_validator_with_control_characters_is_not_sent_back(
    http_server: LoopbackHTTPServer,
) -> None:
    http_server.add("/feed.xml", b"<rss/>", etag='"v2"')
    r = fetch_one(FetchRequest(http_server.url("/feed.xml"), etag='"v1"\r\nX-Injected: 1'))
    assert r.ok and r.etag == '"v2"', r.error
    assert "x-injected" not in http_server.requests("/feed.xml")[0].headers


def test_a_dead_host_costs_one_failure_per_run_not_one_per_page() -> None:
    """Connection refused (like a host that does not resolve) opens the host's circuit: its
    other pages fail at once, retryable, without a request, in this batch and the next one
    made with the same options (one run); another host is not affected."""
    port = closed_port()
    options = local_options(retries=2, backoff_s=0.01, per_host=1)
    urls = [f"http://127.0.0.1:{port}/a/{i}.html" for i in range(6)]
    first = fetch_batch(urls, options)
    assert all(r.status is FetchStatus.FAILED and r.reason is Reason.REFUSED for r in first)
    assert sorted(r.attempts for r in first) == [0, 0, 0, 0, 0, 1]
    skipped = [r for r in first if r.attempts == 0]
    assert all(r.error and r.error.startswith("not tried: the host failed") for r in skipped)
    again = fetch_batch([f"http://127.0.0.1:{port}/b.html"], options)  # the next batch
    assert again[0].attempts == 0 and again[0].reason is Reason.REFUSED
    other = fetch_batch([f"http://localhost:{port}/c.html"], options)  # another host
    assert other[0].attempts == 1
