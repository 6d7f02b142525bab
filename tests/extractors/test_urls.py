"""Tests for extractors.urls: canonical_url, content_hash, is_http_url."""

from __future__ import annotations

import pytest

from newsmon.extractors.urls import canonical_url, content_hash, is_http_url, normalise_for_hash


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host lower-cased, default port dropped, empty path -> "/"
        ("HTTP://WWW.Example.COM:80", "http://www.example.com/"),
        ("https://Example.com:443/News/Story", "https://example.com/News/Story"),
        # non-default port kept
        ("https://example.com:8443", "https://example.com:8443/"),
        ("http://example.com:443/", "http://example.com:443/"),
        # fragment dropped
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a#!/b", "https://example.com/a"),
        # utm family, click ids and feed campaign tags removed; the rest sorted
        (
            "https://ex.org/a/b?utm_source=feed&b=2&a=1&fbclid=XYZ&utm_medium=rss",
            "https://ex.org/a/b?a=1&b=2",
        ),
        ("https://ex.org/?gclid=1&msclkid=2&mc_cid=3&mc_eid=4&igshid=5", "https://ex.org/"),
        ("https://ex.org/?ocid=x&cmpid=y&_ga=z&UTM_Campaign=w&id=7", "https://ex.org/?id=7"),
        ("https://www.bbc.com/news/x?at_medium=RSS&at_campaign=rss", "https://www.bbc.com/news/x"),
        ("https://www.aljazeera.com/n/1?traffic_source=rss", "https://www.aljazeera.com/n/1"),
        ("https://heise.de/n/1?wt_mc=rss.developer.beitrag.atom", "https://heise.de/n/1"),
        ("https://x.org/s?ref_src=twsrc%5Etfw&p=1", "https://x.org/s?p=1"),
        # ref: dropped only when it names a referral channel
        ("https://ex.org/p?ref=rss", "https://ex.org/p"),
        ("https://ex.org/p?ref=Twitter&q=1", "https://ex.org/p?q=1"),
        ("https://code.example/repo?ref=main", "https://code.example/repo?ref=main"),
        # repeated names keep their relative order; sort is by name only
        ("https://ex.org/?b=2&a=9&a=1", "https://ex.org/?a=9&a=1&b=2"),
        # blank values kept, empty pairs and an empty query dropped
        ("https://ex.org/?x=&&y=1", "https://ex.org/?x=&y=1"),
        ("https://ex.org/a?", "https://ex.org/a"),
        ("https://ex.org/a?utm_source=x", "https://ex.org/a"),
        # percent escapes: upper-cased; unreserved decoded; encoded slash kept
        ("https://ex.org/%7euser/a%2fb?x=%e2%82%ac", "https://ex.org/~user/a%2Fb?x=%E2%82%AC"),
        # IRI and its encoded form agree; IDN host to punycode
        ("https://bücher.de/straße?q=ü", "https://xn--bcher-kva.de/stra%C3%9Fe?q=%C3%BC"),
        (
            "https://xn--bcher-kva.de/stra%C3%9Fe?q=%C3%BC",
            "https://xn--bcher-kva.de/stra%C3%9Fe?q=%C3%BC",
        ),
        # trailing dot on the host removed; user info kept; www. kept
        ("https://Example.com./x", "https://example.com/x"),
        ("https://u:p@Ex.org/", "https://u:p@ex.org/"),
        ("https://example.com/", "https://example.com/"),
        # IPv6 literal
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        # surrounding whitespace stripped
        ("  https://ex.org/a \n", "https://ex.org/a"),
        # not http(s) or unparseable: returned (stripped), not raised
        ("mailto:Someone@Example.com", "mailto:Someone@Example.com"),
        ("FTP://ex.org/x", "ftp://ex.org/x"),
        ("http://[bad", "http://[bad"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    urls = [
        "https://Ex.org:443/a%7e/b?z=1&utm_source=x&a=%c3%bc#f",
        "https://bücher.de/straße?q=ü&b=2",
        "http://example.com",
    ]
    for url in urls:
        once = canonical_url(url)
        assert canonical_url(once) == once


def test_canonical_url_keeps_www_distinct() -> None:
    assert canonical_url("https://www.example.com/a") != canonical_url("https://example.com/a")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com", True),
        ("HTTPS://example.com/a?b=c", True),
        ("https://example.com:8080/", True),
        ("ftp://example.com/", False),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("/relative/path", False),
        ("example.com/a", False),
        ("https://", False),
        ("https:///path-only", False),
        ("http://[bad", False),
        ("https://exa mple.com/", False),
        ("", False),
    ],
)
def test_is_http_url(url: str, expected: bool) -> None:
    assert is_http_url(url) is expected


def test_content_hash_is_sha256_hex() -> None:
    digest = content_hash("Hello")
    assert len(digest) == 64
    assert all(ch in "0123456789abcdef" for ch in digest)
    # a fixed value: the hash must not change between runs, hosts or releases
    assert content_hash("Hello") == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256("hello")
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("NATO summit in Brussels", "nato   summit\nin\tBrussels "),  # case and whitespace
        ("Straße", "STRASSE"),  # case folding, not just lower()
        ("ﬁnance ①", "finance 1"),  # NFKC compatibility forms
        ("Cafe\u0301", "Café"),  # combining accent vs precomposed
        ("defence\u00ad ministers", "defence ministers"),  # soft hyphen
        ("zero\u200bwidth", "zerowidth"),  # zero-width space
        ("\ufeffBOM first", "BOM first"),
        ("no-break\u00a0space", "no-break space"),  # NBSP (NFKC -> space)
    ],
)
def test_content_hash_normalises(a: str, b: str) -> None:
    assert content_hash(a) == content_hash(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("NATO summit", "NATO summits"),
        ("a b", "ab"),  # whitespace collapsed, not removed
        ("Café", "Cafe"),  # accents are significant
    ],
)
def test_content_hash_distinguishes(a: str, b: str) -> None:
    assert content_hash(a) != content_hash(b)


def test_normalise_for_hash() -> None:
    assert normalise_for_hash("  Hello\n\nWORLD\u00ad  ") == "hello world"
    assert normalise_for_hash("") == ""
