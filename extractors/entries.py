"""Normalise one feed's entries: plain text, links, dates, guids and caps.

Both parsers in :mod:`newsmon.extractors.feeds` (feedparser for XML, ``json`` for JSON Feed) turn
each entry into a ``_RawEntry`` of plain Python values; :func:`_build_entries` makes the frozen
``ParsedEntry`` objects from them. The plain text comes from our own ``html.parser``-based
stripper (:func:`html_to_text`), which drops ``script``, ``style`` and similar elements entirely,
unescapes entities and collapses whitespace; the output is never rendered as HTML.

Decisions:

- Titles and summaries are always reduced to plain text (tags stripped, ``script``/``style``
  dropped with their content, entities unescaped), whatever type the feed declares: an escaped
  ``&lt;script&gt;`` in a "plain text" title is markup too, and nothing downstream should ever
  have to escape a title. Titles are capped at ``MAX_TITLE_CHARS``, summaries at
  ``MAX_SUMMARY_CHARS``.
- Entry ``link``: absolute http(s) only; any other scheme (``javascript:``, ``data:``, ``ftp:``)
  or an unresolvable relative link gives ``link=None`` and the original value (capped) in
  ``rejected_link``. A ``user:password@`` part is removed (a relative link resolved against a
  feed URL with credentials would otherwise inherit them): credentials are for the feed only.
- ``published_at``: published, else updated, else created date, as aware UTC; dates more than
  ``MAX_FUTURE`` ahead of ``now`` (or that do not convert) become ``None``.
- ``guid``: the entry id, else its link, else ``"sha256:" + content_hash(title + summary)``;
  ids over ``MAX_GUID_CHARS`` are replaced by ``"sha256:" + hash of the id``. Later entries with
  an already-seen guid are dropped (counted in ``duplicates_dropped``); entries with no id,
  link, title or summary (e.g. stray ``<item/>`` elements) are dropped (``empty_dropped``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urljoin

from newsmon.extractors.urls import content_hash, is_http_url, strip_userinfo

__all__ = [
    "MAX_FUTURE",
    "MAX_SUMMARY_CHARS",
    "MAX_TITLE_CHARS",
    "ParsedEntry",
    "collapse_ws",
    "html_to_text",
    "valid_text",
]

MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000
MAX_AUTHOR_CHARS = 300
MAX_TAG_CHARS = 200
MAX_TAGS = 50
MAX_GUID_CHARS = 1_000
MAX_REJECTED_LINK_CHARS = 200
MAX_FUTURE = timedelta(days=2)
# raw HTML longer than this is cut before stripping (bounds the work on pathological input)
_MAX_HTML_INPUT_CHARS = 2_000_000


@dataclass(frozen=True)
class ParsedEntry:
    guid: str
    link: str | None  # absolute http(s) URL or None
    title: str
    summary: str  # plain text
    published_at: datetime | None  # tz-aware UTC
    author: str | None
    tags: tuple[str, ...]
    rejected_link: str | None = None  # a non-http(s) or unresolvable link that was dropped


# --------------------------------------------------------------------------- text helpers


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, skipping non-content elements."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg", "math", "iframe"})
    _BLOCK = frozenset(
        {
            "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
            "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
            "hr", "img", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th",
            "tr", "ul",
        }
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


# fallback stripping, only for markup html.parser refuses
_SKIPPED_BLOCK = re.compile(
    r"<(script|style|noscript|template|svg|math|iframe)\b.*?(</\1\s*>|\Z)", re.I | re.S
)
_TAG = re.compile(r"<[^>]*>?")


def valid_text(text: str) -> str:
    """``text`` as valid Unicode: a lone UTF-16 surrogate (legal in JSON, ``"\\ud800"``) cannot
    be encoded as UTF-8, and would fail every later step that stores or hashes it; it becomes
    U+FFFD (a well-formed surrogate pair becomes its character)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def collapse_ws(text: str) -> str:
    return " ".join(valid_text(text).split())


def _defuse(html: str) -> str:
    """``html`` with every ``<`` that opens nothing complete written as ``&lt;``.

    Python's html.parser rescans the rest of its input at each construct it cannot close: 400 KB
    of ``<!--`` took 100 s, 600 KB of ``<a`` more than 5 minutes (issue 21's super-linear
    summaries). One pass here decides instead, each ``<`` looking no further than the next
    ``<``: a comment is kept when a ``-->`` follows somewhere, a tag, declaration or processing
    instruction when its ``>`` comes before the next ``<``. What is kept parses as before; an
    unclosed tag is shown as text (``<a`` as ``< a``: nothing stored looks like markup), an
    unclosed declaration or comment is dropped."""
    last_comment_end = html.rfind("-->")
    out: list[str] = []
    i = 0
    while (j := html.find("<", i)) >= 0:
        out.append(html[i:j])
        if html.startswith("<!--", j) and j < last_comment_end:
            end = html.find("-->", j + 4) + 3  # found: a "-->" lies beyond j
            out.append(html[j:end])
            i = end
            continue
        following = html.find("<", j + 1)
        stop = len(html) if following < 0 else following
        if html.find(">", j + 1, stop) >= 0 and not html.startswith("<!--", j):
            out.append(html[j:stop])
        elif not html.startswith(("<!", "<?"), j):  # "< " so that no stored text looks like a tag
            out.append("&lt; " + html[j + 1 : stop])
        i = stop  # (an unclosed declaration, CDATA section or comment is dropped, as before)
    out.append(html[i:])
    return "".join(out)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment: tags stripped, entities unescaped, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return collapse_ws(html)
    html = _defuse(html[:_MAX_HTML_INPUT_CHARS])
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except AssertionError:  # html.parser raises it on some malformed "<![...]>" declarations
        return collapse_ws(unescape(_TAG.sub(" ", _SKIPPED_BLOCK.sub(" ", html))))
    return collapse_ws("".join(parser.parts))


# HTML elements that, in a field declared plain text, are markup all the same
_HTML_ELEMENTS = (
    "a|abbr|b|big|blockquote|br|button|center|code|del|div|em|embed|font|form|h[1-6]|hr|i|img|"
    "input|ins|li|link|mark|meta|object|ol|p|pre|q|s|small|span|strike|strong|sub|sup|table|"
    "tbody|td|th|tr|u|ul|video|audio|source|base|body|html|head|title"
)
_PLAIN_TAG = re.compile(rf"<\s*/?\s*(?:{_HTML_ELEMENTS})\b[^<>]*>", re.I)


def _text(value: str, is_html: bool) -> str:
    """Plain text of a title or summary: HTML reduced to its text; "plain text" cleared of
    what is markup anyway (script/style elements with their content, known HTML tags), while
    other angle brackets ("a <b> c" is kept as "a c", "x <not a tag>" as is) stay text."""
    if is_html:
        return html_to_text(value)
    if "<" not in value:
        return collapse_ws(value)
    value = value[:_MAX_HTML_INPUT_CHARS]
    return collapse_ws(_PLAIN_TAG.sub(" ", _SKIPPED_BLOCK.sub(" ", value)))


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip()


def _short_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class _RawEntry:
    """One entry's values, already as plain Python types, before normalisation."""

    id: str
    link: str
    title: str
    title_is_html: bool
    summary: str
    summary_is_html: bool
    published: datetime | None
    author: str
    tags: tuple[str, ...]


def _resolve_link(raw: str, base: str | None) -> tuple[str | None, str | None]:
    """(absolute http(s) link or None, the rejected raw value or None)."""
    raw = raw.strip()
    if not raw:
        return None, None
    candidate = raw
    if base:
        try:
            candidate = urljoin(base, raw)
        except ValueError:
            candidate = raw
    if is_http_url(candidate):
        return strip_userinfo(candidate), None
    return None, _cap(strip_userinfo(raw), MAX_REJECTED_LINK_CHARS)


def _sane_date(value: datetime | None, now: datetime) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return None if value > now + MAX_FUTURE else value


@dataclass(frozen=True)
class _Built:
    entries: tuple[ParsedEntry, ...]
    duplicates_dropped: int
    empty_dropped: int


def _build_entries(raws: list[_RawEntry], base: str | None, now: datetime) -> _Built:
    entries: list[ParsedEntry] = []
    seen: set[str] = set()
    duplicates = empty = 0
    for raw in raws:
        # plain text whatever the declared type: see the module docstring
        title = _cap(_text(raw.title[: MAX_TITLE_CHARS * 4], raw.title_is_html), MAX_TITLE_CHARS)
        summary = _cap(_text(raw.summary, raw.summary_is_html), MAX_SUMMARY_CHARS)
        link, rejected = _resolve_link(valid_text(raw.link), base)
        if not (title or summary or raw.link.strip() or raw.id.strip()):
            empty += 1
            continue
        guid = valid_text(raw.id.strip()) or link or ""
        if not guid:
            guid = "sha256:" + content_hash(title + "\n" + summary)[:32]
        elif len(guid) > MAX_GUID_CHARS:
            guid = _short_hash(guid)
        if guid in seen:
            duplicates += 1
            continue
        seen.add(guid)
        tags = tuple(dict.fromkeys(t for t in (collapse_ws(t) for t in raw.tags) if t))
        author = _cap(collapse_ws(raw.author), MAX_AUTHOR_CHARS) or None
        entries.append(
            ParsedEntry(
                guid=guid,
                link=link,
                title=title,
                summary=summary,
                published_at=_sane_date(raw.published, now),
                author=author,
                tags=tuple(_cap(t, MAX_TAG_CHARS) for t in tags[:MAX_TAGS]),
                rejected_link=rejected,
            )
        )
    return _Built(tuple(entries), duplicates, empty)
