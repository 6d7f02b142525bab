"""Article pages -> main text and metadata, with trafilatura, on every core.

``extract_article`` wraps trafilatura's untyped result in :class:`ExtractedArticle` at once; "no
text" is a value (``status="empty"``), not an exception. ``extract_pages`` runs a batch, in a
process pool when the batch is large enough to pay for it (extraction is CPU-bound: about 25 ms
for a 50 KB page, see docs/performance.md).
"""

from __future__ import annotations

import codecs
import contextlib
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import trafilatura
from courlan import extract_domain
from htmldate import find_date
from lxml import etree
from lxml.html import (
    HtmlComment,
    HtmlElement,
    HtmlEntity,
    HTMLParser,
    HtmlProcessingInstruction,
    fromstring,
)
from trafilatura.metadata import (
    META_URL,
    examine_meta,
    extract_author,
    extract_meta_json,
    extract_sitename,
    extract_title,
    extract_url,
)
from trafilatura.settings import Document, set_date_params
from trafilatura.utils import decode_file, is_dubious_html, repair_faulty_html

from newsmon.extractors.reasons import Reason

# Pages at most this long (in characters, after decoding) are handed to trafilatura.
MAX_HTML_CHARS = 5_000_000
# trafilatura's time grows with the square of the inline elements in a block: 40,000 tiny ones
# in one paragraph took 11 s, 200,000 (1.6 MB) over four minutes of a worker (issue 21). The
# 53 real pages of the shared corpus have at most 5,647 elements in all.
MAX_ELEMENTS = 30_000

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.IGNORECASE
)
_CT_CHARSET = re.compile(r"charset\s*=\s*[\"']?([a-zA-Z0-9_.:-]+)", re.IGNORECASE)
_HTML_LANG = re.compile(r"<html[^>]*?\slang\s*=\s*[\"']?([a-zA-Z]{2,3})(?:[-_][a-zA-Z]+)?", re.I)
_NOT_HTML_MAGIC = (b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"RIFF")
_HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")


# trafilatura's parser (trafilatura.utils.HTML_PARSER), with one change: every element is an
# HtmlElement, chosen in C. lxml.html's parser asks a Python method for each element's class
# (so that forms and inputs get their own), every time an element object is made, which
# trafilatura's tree walks do hundreds of thousands of times a page; it never uses those
# classes. Same text and metadata (tests/extractors/test_articles.py); 2-6% less extraction CPU.
_HTML_PARSER = HTMLParser(
    collect_ids=False,
    default_doctype=False,
    encoding="utf-8",
    remove_comments=True,
    remove_pis=True,
)
_HTML_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
    )
)


def parse_html(html: str) -> HtmlElement | None:
    """The tree of a decoded page, or None when it is not HTML: ``trafilatura.utils.load_html``
    (same repairs, fallback and rejection) with :data:`_HTML_PARSER`."""
    beginning = html[:50].lower()
    dubious = is_dubious_html(beginning)
    html = repair_faulty_html(html, beginning)
    tree: HtmlElement | None = None
    as_bytes = False
    try:
        tree = fromstring(html, parser=_HTML_PARSER)
    except ValueError:  # "Unicode strings with encoding declaration are not supported"
        as_bytes = True
    except etree.LxmlError:
        pass
    if as_bytes or tree is None or len(tree) < 1:
        try:
            tree = fromstring(html.encode("utf8", "surrogatepass"), parser=_HTML_PARSER)
        except (etree.LxmlError, ValueError):
            tree = None
    if tree is not None and dubious and len(tree) < 2:
        return None
    return tree


class ExtractionStatus(StrEnum):
    EXTRACTED = "extracted"  # main text found
    EMPTY = "empty"  # a page, but no main text in it
    FAILED = "failed"  # the page could not be fetched or was not HTML (see reason)


@dataclass(frozen=True)
class ExtractedArticle:
    status: ExtractionStatus
    reason: Reason | None = None
    text: str | None = None
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    site_name: str | None = None
    language: str | None = None
    description: str | None = None
    error: str | None = None

    @classmethod
    def failed(cls, reason: Reason, error: str | None = None) -> ExtractedArticle:
        return cls(status=ExtractionStatus.FAILED, reason=reason, error=error)


@dataclass(frozen=True)
class Page:
    """One fetched page handed to extraction (picklable: crosses into worker processes)."""

    url: str
    content: bytes
    content_type: str | None = None


def _whatwg_cp1252(err: UnicodeError) -> tuple[str, int]:
    # cp1252 leaves 0x81 0x8D 0x8F 0x90 0x9D undefined; browsers (WHATWG windows-1252) map them to
    # the code points of the same value, so one stray byte does not void the declared charset.
    assert isinstance(err, UnicodeDecodeError)
    return err.object[err.start : err.end].decode("latin-1"), err.end


codecs.register_error("newsmon-whatwg-cp1252", _whatwg_cp1252)


def _known_codec(name: str) -> str | None:
    try:
        return codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None


def decode_html(content: bytes, content_type: str | None = None) -> str:
    """Decode page bytes: HTTP charset, then a ``<meta charset>``, then UTF-8, then a guess.

    A declared charset is trusted only if the bytes decode with it; ``windows-1252`` stands in
    for ``iso-8859-1`` as browsers do.
    """
    declared: list[str] = []
    if content_type and (m := _CT_CHARSET.search(content_type)):
        declared.append(m.group(1))
    if m2 := _META_CHARSET.search(content[:4096]):
        declared.append(m2.group(1).decode("ascii", "replace"))
    for name in declared:
        codec = _known_codec(name)
        if codec in ("latin_1", "iso8859-1"):
            codec = "cp1252"
        if codec is None:
            continue
        try:
            return content.decode(codec, "newsmon-whatwg-cp1252" if codec == "cp1252" else "strict")
        except UnicodeDecodeError:
            continue
    return decode_file(content)


def looks_like_html(content: bytes, content_type: str | None) -> bool:
    head = content[:16].lstrip()
    if any(head.startswith(magic) for magic in _NOT_HTML_MAGIC):
        return False
    if content_type:
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime and mime not in _HTML_TYPES and not mime.endswith("+xml"):
            return False
    return True


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _clean(value: Any, limit: int = 2_000) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value[:limit] or None


def page_metadata(tree: HtmlElement, url: str | None) -> Document:
    """The metadata newsmon keeps (title, author, date, site name, description, URL), found the
    way ``trafilatura.bare_extraction(with_metadata=True)`` finds them.

    That call runs ``trafilatura.metadata.extract_metadata``, which also looks for categories,
    tags and a licence: three searches over the whole page that newsmon never stores and that
    cost 13-15% of the extraction time (docs/performance.md). This is the same function, same
    order and same cleaning, without them; tests/extractors/test_articles.py checks the result
    against trafilatura's own on every corpus page, so an upgrade that changes it is caught.
    """
    metadata = examine_meta(tree)
    if metadata.author and " " not in metadata.author:
        metadata.author = None
    with contextlib.suppress(Exception):  # as trafilatura does (bugs in the JSON-LD parser)
        metadata = extract_meta_json(tree, metadata)
    if not metadata.title:
        metadata.title = extract_title(tree)
    if not metadata.author:
        metadata.author = extract_author(tree)
    if not metadata.url:
        metadata.url = extract_url(tree, url)
    if metadata.url:
        metadata.hostname = extract_domain(metadata.url, fast=True)
    # bare_extraction passes its `fast` flag (False) as extract_metadata's `extensive`
    date_config = set_date_params(False)
    date_config["url"] = metadata.url
    metadata.date = find_date(tree, **date_config)
    if not metadata.sitename:
        metadata.sitename = extract_sitename(tree)
    if metadata.sitename:
        site = metadata.sitename.lstrip("@")  # a Twitter handle
        capitalise = bool(site) and "." not in site and not site[0].isupper()
        metadata.sitename = site.title() if capitalise else site
    elif metadata.url and (match := META_URL.match(metadata.url)):
        metadata.sitename = match[1]
    metadata.clean_and_trim()
    return metadata


def extract_article(page: Page) -> ExtractedArticle:
    """Extract one page. Never raises for a bad page: the result carries the reason."""
    if not page.content.strip():
        return ExtractedArticle(status=ExtractionStatus.EMPTY, reason=Reason.EMPTY)
    if not looks_like_html(page.content, page.content_type):
        return ExtractedArticle.failed(Reason.NOT_HTML, f"content type {page.content_type!r}")
    html = decode_html(page.content, page.content_type)[:MAX_HTML_CHARS]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = parse_html(html)
            if tree is None:
                return ExtractedArticle(status=ExtractionStatus.EMPTY, reason=Reason.EMPTY)
            if sum(1 for _ in tree.iter()) > MAX_ELEMENTS:
                return ExtractedArticle.failed(
                    Reason.TOO_LARGE, f"over {MAX_ELEMENTS} HTML elements (an article: thousands)"
                )
            metadata = page_metadata(tree, page.url)  # before extraction, as trafilatura does
            doc = trafilatura.bare_extraction(
                tree,  # copied, not changed
                url=page.url,
                with_metadata=False,
                include_comments=False,
                include_tables=True,
            )
    except (ValueError, TypeError, AttributeError, LookupError, RecursionError) as exc:
        # trafilatura and lxml raise these on pathological markup
        return ExtractedArticle.failed(Reason.EXTRACT_ERROR, f"{type(exc).__name__}: {exc}")
    if not isinstance(doc, Document):  # None: no main text (a dict only with as_dict=True)
        return ExtractedArticle(status=ExtractionStatus.EMPTY, reason=Reason.EMPTY)
    text = (doc.text or "").strip()
    language = _clean(doc.language or metadata.language, 8)
    if language is None and (m := _HTML_LANG.search(html[:4096])):
        language = m.group(1).lower()
    return ExtractedArticle(
        status=ExtractionStatus.EXTRACTED if text else ExtractionStatus.EMPTY,
        reason=None if text else Reason.EMPTY,
        text=text or None,
        title=_clean(metadata.title, 1_000),
        author=_clean(metadata.author, 500),
        published_at=_parse_date(metadata.date),
        site_name=_clean(metadata.sitename, 200),
        language=language,
        description=_clean(metadata.description, 2_000),
    )


def warm_up() -> None:
    """Nothing: a job that makes a process-pool worker start early, with this module loaded."""


def _extract_chunk(pages: Sequence[Page]) -> list[ExtractedArticle]:
    return [extract_article(p) for p in pages]


def extract_pages(
    pages: Sequence[Page], executor: Executor | None = None, chunk_size: int = 8
) -> list[ExtractedArticle]:
    """Extract a batch, in order. With an executor (a process pool), chunks run in parallel."""
    if executor is None or len(pages) <= chunk_size:
        return _extract_chunk(pages)
    chunks = [pages[i : i + chunk_size] for i in range(0, len(pages), chunk_size)]
    results: list[ExtractedArticle] = []
    for part in executor.map(_extract_chunk, chunks):
        results.extend(part)
    return results


__all__ = [
    "ExtractedArticle",
    "ExtractionStatus",
    "Page",
    "decode_html",
    "extract_article",
    "extract_pages",
    "looks_like_html",
    "page_metadata",
    "parse_html",
    "warm_up",
]
