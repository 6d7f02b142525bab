"""A generated benchmark corpus: N feeds x M items, each item a realistic article page on disk.

Pages are 30-150 KB of HTML the way news sites send them: a head with CSS, JSON-LD and tracking
script, a mega-menu, a cookie banner, breadcrumbs, the article (400-1,500 words with a byline,
figure, subheads and an inline "read more" box), tags, share buttons, reader comments, a
"most read" sidebar, related teasers, a footer and a JSON state blob. Their element counts
(about 400-1,400) and so their extraction cost match the real pages in
``../shared/corpus/pages/`` of the same size (15-40 ms each with trafilatura); see
docs/performance.md.

Generation is deterministic: every page comes from ``random.Random(f"{seed}:{feed}:{item}")``,
so a corpus (or any slice of it) is the same everywhere, and the text is composed from
``benchmarks/text.py``, never copied. ``--templates DIR`` takes the ``<head>`` of real pages from
a directory (for example ``../shared/corpus/pages/``) instead of the generated one; without it
nothing outside the repository is read.

Feeds are written with a ``{{BASE}}`` placeholder that the server replaces with the site's
address (each feed is one site, on its own port: see ``benchmarks/server.py``).
"""

from __future__ import annotations

import hashlib
import html
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from benchmarks import text

EPOCH = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
MIN_PAGE_BYTES = 30_000
MAX_PAGE_BYTES = 150_000
MARKUP_SHARE = 0.6  # of a page's bytes; the rest is inline script and JSON, as on news sites


@dataclass(frozen=True)
class CorpusSpec:
    """What to generate. ``relevant_share`` of the articles are about EU-NATO defence."""

    feeds: int = 40
    items: int = 50
    seed: int = 6
    relevant_share: float = 0.3
    templates: Path | None = None


@dataclass(frozen=True)
class PageInfo:
    """One article page as listed in ``manifest.jsonl`` (paths relative to the corpus root)."""

    feed: int
    item: int
    path: str  # URL path, also the file under pages/
    title: str
    relevant: bool
    words: int
    bytes: int
    etag: str
    last_modified: str


def page_path(feed: int, item: int, section: str, published: datetime) -> str:
    return f"/news/{section.lower()}/{published:%Y/%m/%d}/story-{feed:04d}-{item:04d}.html"


def published_at(rng: random.Random, item: int) -> datetime:
    """Newest first, about an hour apart, as a feed lists them."""
    return EPOCH - timedelta(minutes=60 * item + rng.randint(0, 50))


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


# --- page parts ------------------------------------------------------------------------------


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _links(rng: random.Random, n: int, prefix: str) -> str:
    items = []
    for i in range(n):
        section = rng.choice(text.SECTIONS)
        items.append(
            f'<li class="menu-item menu-item-{i}"><a class="menu-link" '
            f'href="/{prefix}/{section.lower()}/{i}" data-track="nav-{i}">{section}</a></li>'
        )
    return "".join(items)


def _css(rng: random.Random, rules: int) -> str:
    props = ("margin", "padding", "color", "font-size", "line-height", "border", "display")
    out = []
    for i in range(rules):
        decls = ";".join(f"{rng.choice(props)}:{rng.randint(0, 40)}px" for _ in range(4))
        out.append(f".c{i:03d}-{rng.randint(0, 999)}{{{decls}}}")
    return "".join(out)


def _head(
    rng: random.Random, site: str, title: str, summary: str, url: str, author: str, when: str
) -> str:
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": title,
        "datePublished": when,
        "author": {"@type": "Person", "name": author},
        "publisher": {"@type": "Organization", "name": site},
        "mainEntityOfPage": url,
    }
    return (
        '<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} | {_e(site)}</title>"
        f'<meta name="description" content="{_e(summary)}">'
        f'<meta name="author" content="{_e(author)}">'
        f'<meta property="og:title" content="{_e(title)}">'
        f'<meta property="og:site_name" content="{_e(site)}">'
        f'<meta property="og:url" content="{_e(url)}">'
        f'<meta property="article:published_time" content="{when}">'
        f'<link rel="canonical" href="{_e(url)}">'
        f"<style>{_css(rng, rng.randint(40, 120))}</style>"
        f'<script type="application/ld+json">{json.dumps(ld)}</script>'
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
        f"gtag('js',new Date());gtag('config','G-{rng.randint(10**6, 10**7)}');</script>"
        "</head>"
    )


def _header(rng: random.Random, site: str) -> str:
    menus = "".join(
        f'<div class="mega-menu"><span class="menu-title">{s}</span><ul class="submenu">'
        f"{_links(rng, rng.randint(6, 14), s.lower())}</ul></div>"
        for s in rng.sample(text.SECTIONS, rng.randint(5, 10))
    )
    return (
        '<div class="cookie-banner" role="dialog"><p>We use cookies to improve your experience '
        "and to show you personalised advertising. You can change your choice at any time.</p>"
        '<button class="accept">Accept all</button><button class="reject">Reject</button></div>'
        f'<header class="site-header"><a class="logo" href="/">{_e(site)}</a>'
        f'<nav class="main-nav"><ul class="menu">{_links(rng, rng.randint(12, 24), "s")}</ul>'
        f"{menus}</nav>"
        '<form class="search" action="/search"><input name="q" placeholder="Search">'
        '<button type="submit">Search</button></form></header>'
    )


def _article(
    rng: random.Random, title: str, author: str, when: str, paras: list[str], relevant: bool
) -> str:
    body: list[str] = []
    for i, para in enumerate(paras):
        if i and i % 4 == 0:
            body.append(f"<h2>{_e(text.title(rng, relevant).split(' as ')[0])}</h2>")
        body.append(f"<p>{_e(para)}</p>")
        if i == 2:
            body.append(
                '<aside class="read-more"><strong>Read more:</strong> '
                f'<a href="/news/related/{rng.randint(1, 9999)}">{_e(text.title(rng, False))}</a>'
                "</aside>"
            )
        if i == 5:
            body.append(
                '<div class="ad-slot" data-ad="mid-article"><span>Advertisement</span></div>'
            )
    tags = "".join(
        f'<li><a href="/tag/{s.lower()}">{s}</a></li>' for s in rng.sample(text.SECTIONS, 4)
    )
    return (
        '<article class="story">'
        f'<h1 class="headline">{_e(title)}</h1>'
        f'<p class="byline">By <a rel="author" href="/authors/{rng.randint(1, 99)}">{_e(author)}'
        f'</a> <time datetime="{when}">{when[:10]}</time></p>'
        f'<figure><img src="/img/{rng.randint(1, 10**6)}.jpg" alt="">'
        f"<figcaption>{_e(text.fill(rng, 'Officials in {city} on Monday.'))} Photo: Agency"
        "</figcaption></figure>"
        f'<div class="story-body">{"".join(body)}</div>'
        f'<ul class="tags">{tags}</ul>'
        '<div class="share"><a href="#">Share</a><a href="#">Post</a><a href="#">Email</a></div>'
        "</article>"
    )


def _comment(rng: random.Random, i: int) -> str:
    return (
        f'<div class="comment" id="c{i}"><div class="comment-meta"><span class="comment-author">'
        f"{_e(rng.choice(text.PEOPLE).split()[0])}{rng.randint(1, 999)}</span>"
        f'<span class="comment-time">{rng.randint(1, 59)} minutes ago</span></div>'
        f'<p class="comment-body">{_e(text.comment(rng))}</p>'
        '<div class="comment-actions"><button>Reply</button><button>Like</button></div></div>'
    )


def _teaser(rng: random.Random, i: int) -> str:
    return (
        '<div class="teaser"><div class="teaser-inner"><div class="teaser-media">'
        f'<a href="/news/{rng.randint(1, 10**5)}"><picture><source srcset="/img/t{i}.webp">'
        f'<img src="/img/t{rng.randint(1, 10**5)}.jpg" alt=""></picture></a></div>'
        f'<div class="teaser-text"><span class="kicker">{rng.choice(text.SECTIONS)}</span>'
        f'<h3><a href="/news/{i}">{_e(text.title(rng, False))}</a></h3>'
        f'<p class="teaser-summary">{_e(text.fill(rng, rng.choice(text.OTHER_SENTENCES)))}</p>'
        '<div class="teaser-meta"><span class="time">2 hours ago</span>'
        '<span class="comments-count">12</span></div></div></div></div>'
    )


def _until(rng: random.Random, make: Callable[[random.Random, int], str], budget: int) -> str:
    """Blocks from ``make`` until they fill ``budget`` characters (at least one)."""
    parts: list[str] = []
    size = 0
    while not parts or size < budget:
        parts.append(make(rng, len(parts)))
        size += len(parts[-1])
    return "".join(parts)


def _comments(rng: random.Random, budget: int) -> str:
    items = _until(rng, _comment, budget)
    return f'<section class="comments"><h2>Comments</h2>{items}</section>'


def _teasers(rng: random.Random, budget: int, cls: str) -> str:
    items = _until(rng, _teaser, budget)
    return f'<section class="{cls}"><h2>More stories</h2>{items}</section>'


def _footer(rng: random.Random, site: str) -> str:
    cols = "".join(
        f'<div class="footer-col"><h4>{s}</h4><ul>{_links(rng, rng.randint(5, 10), "f")}</ul></div>'
        for s in rng.sample(text.SECTIONS, 5)
    )
    return (
        f'<footer class="site-footer">{cols}<p class="copyright">© 2026 {_e(site)}. '
        "All rights reserved. Terms of use. Privacy policy. Cookie settings.</p></footer>"
    )


def _state_blob(rng: random.Random, size: int) -> str:
    """A framework state script (``__NEXT_DATA__``-like) padding the page to its target size."""
    entries: dict[str, object] = {}
    approx = 0
    while approx < size:
        key = f"k{len(entries)}_{rng.randint(0, 10**6)}"
        value = {"id": rng.randint(0, 10**9), "slot": rng.choice(text.SECTIONS), "w": approx}
        entries[key] = value
        approx += 60
    return f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(entries)}</script>'


# --- pages and feeds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """A feed item with its page."""

    info: PageInfo
    summary: str
    author: str
    published: datetime
    page: bytes


def make_item(spec: CorpusSpec, feed: int, item: int, head_template: str | None = None) -> Item:
    """Generate one article page (deterministic for ``(spec.seed, feed, item)``)."""
    rng = random.Random(f"{spec.seed}:{feed}:{item}")
    relevant = rng.random() < spec.relevant_share
    site = f"Site {feed:03d} News"
    when_dt = published_at(rng, item)
    when = when_dt.isoformat()
    section = "Defence" if relevant else rng.choice(text.SECTIONS)
    path = page_path(feed, item, section, when_dt)
    title = text.title(rng, relevant)
    author = rng.choice(text.PEOPLE)
    paras = text.paragraphs(rng, relevant, rng.randint(400, 1500))
    summary = paras[0].split(". ")[0].rstrip(".") + "."
    target = rng.randint(MIN_PAGE_BYTES, MAX_PAGE_BYTES - 2_000)  # blocks may overshoot a little
    head = head_template or _head(rng, site, title, summary, "{{BASE}}" + path, author, when)
    top = _header(rng, site) + (
        f'<div class="breadcrumbs"><a href="/">Home</a> › <a href="/news/{section.lower()}">'
        f"{section}</a></div>"
    )
    story = _article(rng, title, author, when, paras, relevant)
    footer = _footer(rng, site)
    # Markup (comments, teasers) fills about MARKUP_SHARE of the page, script the rest, so
    # heavier pages have more of everything around the article, as on real sites.
    budget = max(0, int(target * MARKUP_SHARE) - len(head) - len(top) - len(story) - len(footer))
    body = "".join(
        [
            top,
            '<main class="layout">',
            story,
            _comments(rng, budget // 3),
            '<aside class="sidebar"><h2>Most read</h2>',
            _teasers(rng, budget // 3, "most-read"),
            "</aside>",
            _teasers(rng, budget // 3, "related"),
            "</main>",
            footer,
        ]
    )
    pad = max(0, target - len(head) - len(body) - 200)
    page = (
        f'<!DOCTYPE html><html lang="en">{head}<body class="article-page">{body}'
        f"{_state_blob(rng, pad)}</body></html>"
    ).encode()
    info = PageInfo(
        feed=feed,
        item=item,
        path=path,
        title=title,
        relevant=relevant,
        words=sum(len(p.split()) for p in paras),
        bytes=len(page),
        etag=etag_for(page),
        last_modified=format_datetime(when_dt, usegmt=True),
    )
    return Item(info=info, summary=summary, author=author, published=when_dt, page=page)


def feed_xml(feed: int, items: list[Item]) -> bytes:
    """RSS 2.0 with ``{{BASE}}`` where the site's address goes."""
    entries = "".join(
        "<item>"
        f"<title>{_e(it.info.title)}</title>"
        f"<link>{{{{BASE}}}}{it.info.path}</link>"
        f'<guid isPermaLink="false">site-{feed:03d}-item-{it.info.item:04d}</guid>'
        f"<pubDate>{format_datetime(it.published)}</pubDate>"
        f"<dc:creator>{_e(it.author)}</dc:creator>"
        f"<description>{_e(it.summary)}</description>"
        "</item>"
        for it in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Site {feed:03d} News</title><link>{{{{BASE}}}}/</link>"
        f"<description>Generated benchmark feed {feed}</description><language>en</language>"
        f"{entries}</channel></rss>"
    ).encode()


def template_heads(directory: Path) -> list[str]:
    """The ``<head>`` elements of the HTML pages in ``directory`` (sorted by file name)."""
    heads = []
    for path in sorted(directory.glob("*.html")):
        raw = path.read_text(encoding="utf-8", errors="replace")
        start, end = raw.find("<head"), raw.find("</head>")
        if 0 <= start < end:
            heads.append(raw[start : end + len("</head>")])
    return heads


def write_corpus(spec: CorpusSpec, root: Path) -> list[PageInfo]:
    """Write ``feeds/*.xml``, ``pages/...`` and ``manifest.jsonl`` under ``root``.

    Feeds are generated one at a time, so memory stays at one feed's pages however large the
    corpus.
    """
    heads = template_heads(spec.templates) if spec.templates else []
    infos: list[PageInfo] = []
    (root / "feeds").mkdir(parents=True, exist_ok=True)
    for feed in range(spec.feeds):
        items = []
        for item in range(spec.items):
            head = heads[(feed * spec.items + item) % len(heads)] if heads else None
            items.append(make_item(spec, feed, item, head))
        for it in items:
            path = root / "pages" / it.info.path.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(it.page)
            infos.append(it.info)
        (root / "feeds" / f"{feed:04d}.xml").write_bytes(feed_xml(feed, items))
    with (root / "manifest.jsonl").open("w", encoding="utf-8") as fh:
        for info in infos:
            fh.write(json.dumps(asdict(info)) + "\n")
    return infos


def read_manifest(root: Path) -> list[PageInfo]:
    with (root / "manifest.jsonl").open(encoding="utf-8") as fh:
        return [PageInfo(**json.loads(line)) for line in fh]


__all__ = ["CorpusSpec", "PageInfo", "make_item", "read_manifest", "write_corpus"]
