"""Feed autodiscovery: from a site's home page (or any page) to the feed it links.

``feed_links(html, base_url)`` is pure: the ``<link rel="alternate">`` elements of a page whose
``type`` names a feed (``application/rss+xml``, ``application/atom+xml``,
``application/feed+json``, ``application/json``), as :class:`FeedLink` values in document order.
``rel`` may hold several tokens (``"alternate home"``), matched case-insensitively; ``href`` is
resolved against the page's first ``<base href>`` (itself resolved against ``base_url``) or
``base_url``; only http(s) URLs are kept, without their fragment, each once. The page is parsed
by lxml's HTML parser, which takes any junk; a page it cannot parse at all links nothing.

``find_feed(url, options, max_items)`` fetches ``url`` once through ``fetch_batch`` (the same
limits, address policy and timeouts as every poll) and parses it as a feed, exactly as
``poll_feeds`` would. When that fails and the body is an HTML page, it polls the page's feed
links (at most ``MAX_CANDIDATES``, concurrently, with ``poll_feeds``) and keeps the first, in
document order, that answers as a feed. The result, :class:`Discovery`, is a value: the feed
found, or a failure with a ``Reason`` and a one-line ``error``:

- the page itself could not be fetched, or is neither a feed nor HTML: the poll's own reason
  and error, as ``newsmon feeds check`` always showed them;
- an HTML page that links no feed: ``not_a_feed``, "no feed found: the page links none";
- an HTML page whose feed links all fail: the reason of the first link's failure (so a linked
  feed that times out stays retryable), and the links' count and first failure in ``error``.

No URL is guessed (``/feed``, ``/rss.xml``, ...): a site that links no feed has none found here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urldefrag, urljoin

from lxml import etree

from newsmon.core.settings import FeedConfig
from newsmon.extractors.articles import decode_html
from newsmon.extractors.feeds import MAX_ITEMS, parse_feed
from newsmon.extractors.fetch import FetchOptions, FetchRequest, FetchResult, fetch_batch
from newsmon.extractors.pipeline import FeedPoll, FeedTarget, poll_feeds, stable_id
from newsmon.extractors.reasons import RETRYABLE, Reason
from newsmon.extractors.urls import is_http_url

__all__ = ["MAX_CANDIDATES", "Discovery", "FeedKind", "FeedLink", "feed_links", "find_feed"]

# feed links polled for one page at most: a page listing hundreds of them costs ten requests
MAX_CANDIDATES = 10
_TITLE_MAX_CHARS = 200

FeedKind = Literal["rss", "atom", "json"]

_FEED_TYPES: dict[str, FeedKind] = {
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "application/feed+json": "json",
    "application/json": "json",
}
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_GENERIC_TYPES = frozenset({"", "text/plain", "application/octet-stream"})

_PARSER = etree.HTMLParser(
    encoding="utf-8",  # always handed UTF-8 bytes: the page is decoded first (decode_html)
    remove_comments=True,
    remove_pis=True,
    collect_ids=False,
    no_network=True,
)


@dataclass(frozen=True)
class FeedLink:
    """One feed a page links: its absolute URL, its ``title`` attribute ("" if none), its kind."""

    url: str
    title: str
    kind: FeedKind


def _absolute(href: str | None, base: str) -> str | None:
    if not href or not href.strip():
        return None
    try:
        url = urldefrag(urljoin(base, href.strip())).url
    except ValueError:  # an invalid IPv6 literal and the like
        return None
    return url if is_http_url(url) else None


def feed_links(html: str | bytes, base_url: str) -> list[FeedLink]:
    """The feeds a page links with ``<link rel="alternate" type="...">``, in document order,
    each URL once. ``html`` as bytes is decoded like an article page (``<meta charset>``, UTF-8,
    a guess); never raises on junk."""
    text = html if isinstance(html, str) else decode_html(html)
    try:
        root = etree.fromstring(text.encode("utf-8", "replace"), _PARSER)
    except (etree.LxmlError, ValueError):
        return []
    if root is None:  # nothing but whitespace
        return []
    base = base_url
    for element in root.iter("base"):
        href = element.get("href")
        if href is not None:
            base = _absolute(href, base_url) or base_url  # only the first <base href> counts
            break
    found: list[FeedLink] = []
    seen: set[str] = set()
    for element in root.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        mime = (element.get("type") or "").split(";", 1)[0].strip().lower()
        kind = _FEED_TYPES.get(mime)
        if "alternate" not in rel or kind is None:
            continue
        url = _absolute(element.get("href"), base)
        if url is None or url in seen:
            continue
        seen.add(url)
        title = " ".join((element.get("title") or "").split())[:_TITLE_MAX_CHARS]
        found.append(FeedLink(url, title, kind))
    return found


@dataclass(frozen=True)
class Discovery:
    """What :func:`find_feed` made of a URL.

    ``poll`` is the feed found (the URL's own poll, or a linked feed's), ``None`` when there is
    none; then ``reason``, ``error`` and ``http_status`` say why. ``page_url`` is the page the
    feed was looked for on (after redirects), ``None`` when the URL answered as a feed itself;
    ``candidates`` are the feed links that page holds (all of them, in document order).
    """

    url: str
    poll: FeedPoll | None
    page_url: str | None = None
    candidates: tuple[FeedLink, ...] = ()
    reason: Reason | None = None
    error: str | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.poll is not None

    @property
    def feed_url(self) -> str | None:
        """The URL to add to the feed list: the URL itself or the linked feed's."""
        return self.poll.target.url if self.poll is not None else None

    def as_feed(
        self,
        name: str | None = None,
        tags: Sequence[str] = (),
        language: str | None = None,
        interval: int | None = None,
    ) -> FeedConfig:
        """The feed-list entry for what was found, named ``name``, else the feed's own title,
        else its URL (``newsmon feeds add`` and the reading room's Feeds form alike)."""
        assert self.poll is not None and self.feed_url is not None, "nothing was found"
        title = self.poll.feed.title if self.poll.feed is not None else ""
        return FeedConfig(name or title or self.feed_url, self.feed_url, tuple(tags), language,
                          interval)  # fmt: skip

    @property
    def discovered(self) -> bool:
        """True when the feed was found through a page's link, not at the URL itself."""
        return self.poll is not None and self.page_url is not None

    @property
    def retryable(self) -> bool:
        """A failure that may go away on a later try (timeouts, 5xx, ...)."""
        return self.reason in RETRYABLE

    @property
    def message(self) -> str:
        """One line for a person: what was found, or why nothing was."""
        if self.poll is not None:
            return (
                f"Found {self.feed_url} on {self.page_url}"
                if self.page_url is not None
                else f"{self.url} is a feed"
            )
        code = f" HTTP {self.http_status}" if self.http_status else ""
        detail = f"{self.reason or 'failed'}{code}: {self.error or ''}".rstrip(": ")
        return f"no feed found at {self.url}: {detail}"


def _is_html(content: bytes, content_type: str | None) -> bool:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in _HTML_TYPES:
        return True
    if mime not in _GENERIC_TYPES:
        return False
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head")) or b"<html" in head


def _poll_of(url: str, result: FetchResult, options: FetchOptions, max_items: int) -> FeedPoll:
    """The poll ``poll_feeds`` would make of ``result`` (same parse, body dropped)."""
    feed = (
        parse_feed(
            result.content,
            result.final_url,
            result.content_type,
            max_items=max_items,
            max_bytes=options.max_bytes,
        )
        if result.ok
        else None
    )
    return FeedPoll(FeedTarget(stable_id(url), url), replace(result, content=b""), feed)


def _failure(url: str, poll: FeedPoll) -> Discovery:
    http_status = poll.fetch.http_status
    return Discovery(url, None, reason=poll.reason, error=poll.error, http_status=http_status)


def find_feed(url: str, options: FetchOptions, max_items: int = MAX_ITEMS) -> Discovery:
    """The feed at ``url``, or the first feed the page at ``url`` links that answers as one.

    Never raises for a bad URL or page: the :class:`Discovery` carries the reason. Stores
    nothing; makes one request for ``url`` and, for an HTML page, one per feed link (at most
    :data:`MAX_CANDIDATES`, concurrently).
    """
    [result] = fetch_batch([FetchRequest(url)], options)
    poll = _poll_of(url, result, options, max_items)
    if poll.status != "failed":
        return Discovery(url, poll)
    if not result.ok or not _is_html(result.content, result.content_type):
        return _failure(url, poll)
    page = result.final_url
    links = tuple(feed_links(decode_html(result.content, result.content_type), page))
    wanted = [link for link in links if link.url not in (url, page)][:MAX_CANDIDATES]
    if not wanted:
        error = "no feed found: the page links none (<link rel=alternate>)"
        if links:  # it links only itself, which is not a feed
            error = "no feed found: the page links only itself (<link rel=alternate>)"
        return Discovery(url, None, page, links, Reason.NOT_A_FEED, error)
    polls = poll_feeds([FeedTarget(stable_id(c.url), c.url) for c in wanted], options, max_items)
    for candidate in polls:
        if candidate.status != "failed":
            return Discovery(url, candidate, page, links)
    return _none_answers(url, page, links, polls)


def _none_answers(
    url: str, page: str, links: tuple[FeedLink, ...], polls: Sequence[FeedPoll]
) -> Discovery:
    first = polls[0]
    code = f" HTTP {first.fetch.http_status}" if first.fetch.http_status else ""
    why = f"{first.reason or 'failed'}{code}: {first.error or ''}".rstrip(": ")
    count = f"{len(links)} feed{'s' if len(links) != 1 else ''}"
    error = (
        f"no feed found: the page links {count}, none answers as one ({first.target.url}: {why})"
    )
    return Discovery(url, None, page, links, first.reason or Reason.NOT_A_FEED, error)
