"""A deterministic syndication corpus for the story-clustering tests.

The stories are real news texts read at test time from ``../shared/corpus/labelled/items.jsonl``
(never copied into the repo). What this module adds is written here: five invented outlets, each
with its own page chrome (cookie banner, navigation, "related stories" lists naming *other*
stories, share bars, photo captions and "read more" boxes inside the article, newsletter boxes,
comments, footers), and the small edits syndication makes (another headline, a dateline, US or
British spelling, a trimmed ending, a dropped or reworded sentence, a credit line). Some copies
are feed entries whose page failed: only the title and summary are stored.

Labels: ``story`` is the source item, so two articles belong together exactly when they are
copies of the same item. Same-subject items (many are about Greenland, NATO and tariffs in
January 2026) are different stories and must stay apart.
"""

from __future__ import annotations

import html
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from tests.paths import CORPUS

ITEMS = CORPUS / "labelled" / "items.jsonl"


@dataclass(frozen=True)
class Outlet:
    name: str
    host: str
    dateline_style: str  # how it credits the wire in the first paragraph
    spelling: str  # "us" | "uk"


OUTLETS = (
    Outlet("Wire Herald", "wireherald.example", "{city} (Wire Herald) — ", "uk"),
    Outlet("Baltic Courier", "balticcourier.example", "{city}, {day} — ", "uk"),
    Outlet("Atlantic Ledger", "atlanticledger.example", "{city} — ", "us"),
    Outlet("Continental Post", "continentalpost.example", "", "uk"),
    Outlet("Daily Sentinel", "dailysentinel.example", "{CITY} (AFP) - ", "us"),
)
CITIES = ("Brussels", "Washington", "Copenhagen", "London", "Berlin", "Paris", "Warsaw")
US_UK = (
    ("defense", "defence"),
    ("organization", "organisation"),
    ("center", "centre"),
    ("labor", "labour"),
    ("favor", "favour"),
    ("recognize", "recognise"),
    ("program", "programme"),
    ("analyze", "analyse"),
)


@dataclass(frozen=True)
class CorpusArticle:
    """One published copy: ``html`` is the page, or None when only the feed entry is stored."""

    key: str  # unique; also the URL path
    story: str  # the source item's id: the true cluster label
    outlet: str
    url: str
    title: str
    summary: str
    html: str | None
    published_at: datetime


def _items() -> list[dict[str, Any]]:
    with ITEMS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _date(raw: str, fallback: datetime) -> datetime:
    try:
        return parsedate_to_datetime(raw).astimezone(UTC)
    except (TypeError, ValueError):
        return fallback


_SENTENCE = re.compile(r"(?<=[.!?’”\"])\s+(?=[A-Z“‘\"])")


def _paragraphs(text: str) -> list[str]:
    """The item's paragraphs; texts stored on one line are cut every three sentences."""
    lines = [p.strip() for p in text.split("\n") if p.strip()]
    if len(lines) >= 4:
        return lines
    sentences = _SENTENCE.split(" ".join(lines))
    return [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]


def _respell(text: str, spelling: str) -> str:
    for us, uk in US_UK:
        text = text.replace(uk, us) if spelling == "us" else text.replace(us, uk)
    return text


def _edit(paragraphs: list[str], rng: random.Random, outlet: Outlet, city: str) -> list[str]:
    """The small edits a syndicating outlet makes."""
    paras = [_respell(p, outlet.spelling) for p in paragraphs]
    cut = rng.random()
    if len(paras) > 6 and cut < 0.2:  # cut hard: only the first 40 % run
        paras = paras[: max(3, len(paras) * 2 // 5)]
    elif len(paras) > 6 and cut < 0.7:  # trimmed for length
        paras = paras[: len(paras) - rng.randint(1, max(1, len(paras) // 5))]
    if rng.random() < 0.25:  # the outlet's own intro replaces the first paragraph
        paras[0] = rng.choice(
            (
                "Here is what we know so far about the latest developments, and what could "
                "happen next as officials weigh their options.",
                "The story that dominated the day's agenda took another turn on Thursday, "
                "according to people familiar with the matter.",
                "In a development closely watched by allies and markets alike, the following "
                "account was filed by our partner agency.",
            )
        )
    if len(paras) > 4 and rng.random() < 0.5:  # a sentence dropped in the middle
        i = rng.randrange(1, len(paras) - 1)
        sentences = _SENTENCE.split(paras[i])
        if len(sentences) > 1:
            sentences.pop(rng.randrange(len(sentences)))
            paras[i] = " ".join(sentences)
    if rng.random() < 0.5:  # "said" becomes "says" in a few places
        paras = [p.replace(" said ", " says ", 2) for p in paras]
    day = "Nov 12"
    if outlet.dateline_style and paras:
        prefix = outlet.dateline_style.format(city=city, CITY=city.upper(), day=day)
        paras[0] = prefix + paras[0]
    if rng.random() < 0.5:
        paras.append(
            rng.choice(
                (
                    "Additional reporting by the wire desk; editing by the night team.",
                    "This story has been updated with further details.",
                    "(Reporting by our correspondents; writing by the Europe desk.)",
                )
            )
        )
    return paras


def _title(title: str, rng: random.Random, outlet: Outlet) -> str:
    title = re.sub(r"\s+[|–-]\s+[^|–-]+$", "", title)  # the source's " | Site" suffix
    style = rng.randrange(4)
    if style == 1:
        return f"UPDATE 1-{title}"
    if style == 2:
        words = title.split()
        return " ".join(words[: max(4, len(words) * 2 // 3)])
    if style == 3:
        return f"{title} – {outlet.name}"
    return title


def _page(
    outlet: Outlet,
    title: str,
    summary: str,
    paragraphs: list[str],
    related: list[str],
    rng: random.Random,
    lang: str,
) -> str:
    """A whole page in the outlet's template: chrome around (and inside) the article."""
    esc = html.escape
    nav = "".join(
        f'<li><a href="/section/{s.lower()}">{s}</a></li>'
        for s in ("World", "Europe", "Politics", "Defence", "Business", "Sport", "Opinion")
    )
    related_html = "".join(
        f'<li><a href="/articles/r{i}">{esc(t)}</a></li>' for i, t in enumerate(related)
    )
    body: list[str] = []
    for i, p in enumerate(paragraphs):
        body.append(f"<p>{esc(p)}</p>")
        if i == 1:
            body.append(
                '<figure><img src="/img/lead.jpg" alt=""><figcaption>'
                f"{esc(outlet.name)} photo: officials arrive for talks. (Photo: agency pool)"
                "</figcaption></figure>"
            )
        if i == 3 and related:
            body.append(
                f'<aside class="read-more"><p>Read more: <a href="/articles/x">{esc(related[0])}'
                "</a></p></aside>"
            )
        if i == 5:
            body.append(
                '<div class="newsletter-inline"><p>Sign up for the morning briefing: the day\'s '
                "top stories in your inbox.</p></div>"
            )
    comments = "".join(
        f'<div class="comment"><p class="who">reader{n}</p><p>{esc(c)}</p></div>'
        for n, c in enumerate(
            rng.sample(
                (
                    "Interesting piece, thanks for covering this.",
                    "I don't agree with the framing here at all.",
                    "Who is going to pay for all of this?",
                    "Finally some sensible reporting on the subject.",
                    "This was predictable months ago.",
                ),
                3,
            )
        )
    )
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<title>{esc(title)} | {esc(outlet.name)}</title>
<meta property="og:title" content="{esc(title)}">
<meta property="og:site_name" content="{esc(outlet.name)}">
<meta name="description" content="{esc(summary)}">
</head><body>
<div class="cookie-banner"><p>{esc(outlet.name)} uses cookies to improve your experience and for
advertising. By continuing you accept our cookie policy.</p><button>Accept all</button></div>
<header><a class="logo" href="/">{esc(outlet.name)}</a><form><input name="q"
placeholder="Search {esc(outlet.name)}"></form><nav><ul>{nav}</ul></nav></header>
<div class="breadcrumbs"><a href="/">Home</a> › <a href="/section/world">World</a></div>
<main><article>
<h1>{esc(title)}</h1>
<p class="byline">By staff and agencies</p>
<div class="share"><a href="#">Share on X</a> <a href="#">Share by email</a>
<a href="#">Copy link</a></div>
{"".join(body)}
</article>
<section class="related"><h2>Related stories</h2><ul>{related_html}</ul></section>
<section class="comments"><h2>Comments</h2>{comments}<form><textarea></textarea>
<button>Post comment</button></form></section>
</main>
<aside class="sidebar"><h2>Most read</h2><ol>{related_html}</ol>
<div class="newsletter"><p>Get the {esc(outlet.name)} newsletter every morning.</p></div></aside>
<footer><p>© 2026 {esc(outlet.name)}. All rights reserved.</p><a href="/about">About us</a>
<a href="/privacy">Privacy</a> <a href="/terms">Terms</a> <a href="/contact">Contact</a></footer>
</body></html>"""


def build_corpus(seed: int = 8) -> list[CorpusArticle]:
    """Copies of 17 full-text stories (3-5 outlets each, one copy a failed page), 34 full-text
    singletons, 10 summary-only stories in 2-3 feeds each and 10 summary-only singletons."""
    rng = random.Random(seed)
    items = sorted(_items(), key=lambda i: i["id"])
    full = [i for i in items if i["text_kind"] == "full_text"]
    summaries = [
        i for i in items if i["text_kind"] == "feed_summary" and len(i["text"].split()) >= 20
    ]
    titles = [i["title"] for i in items]
    base_time = datetime(2026, 1, 10, tzinfo=UTC)
    out: list[CorpusArticle] = []

    def emit(
        item: dict[str, Any],
        n: int,
        outlet: Outlet,
        title: str,
        summary: str,
        html: str | None,
        published_at: datetime,
    ) -> None:
        key = f"{item['id']}-{n}"
        url = f"https://{outlet.host}/articles/{key}.html"
        out.append(
            CorpusArticle(key, item["id"], outlet.name, url, title, summary, html, published_at)
        )

    def add(item: dict[str, Any], copies: int, page_failed: int | None) -> None:
        published = _date(item.get("date", ""), base_time + timedelta(days=len(out) % 30))
        paras = _paragraphs(item["text"])
        outlets = rng.sample(OUTLETS, copies)
        city = rng.choice(CITIES)
        for n, outlet in enumerate(outlets):
            title = (
                _title(item["title"], rng, outlet) if n else _title(item["title"], rng, OUTLETS[3])
            )
            edited = _edit(paras, rng, outlet, city) if n else paras
            summary = " ".join(_SENTENCE.split(" ".join(paras))[:2])
            related = rng.sample(titles, 4)
            page = None
            if n != page_failed:
                page = _page(outlet, title, summary, edited, related, rng, item.get("lang", "en"))
            emit(
                item,
                n,
                outlet,
                title,
                summary,
                page,
                published + timedelta(hours=rng.randint(0, 30)),
            )

    for i, item in enumerate(full):
        if i % 3 == 0:
            copies = 3 + (i // 3) % 3
            add(item, copies, page_failed=copies - 1 if (i // 3) % 4 == 1 else None)
        else:
            add(item, 1, None)

    def add_summary(item: dict[str, Any], copies: int) -> None:
        published = _date(item.get("date", ""), base_time)
        outlets = rng.sample(OUTLETS, copies)
        for n, outlet in enumerate(outlets):
            text = item["text"]
            if n:
                text = _respell(text, outlet.spelling)
                if rng.random() < 0.5:
                    text = text.replace(" said ", " says ", 1)
                if rng.random() < 0.5:
                    text = f"{text} Read more on {outlet.name}."
            title = _title(item["title"], rng, outlet)
            emit(
                item, n, outlet, title, text, None, published + timedelta(hours=rng.randint(0, 20))
            )

    for i, item in enumerate(summaries[:20]):
        add_summary(item, 2 + i % 2 if i < 10 else 1)
    return out


def pairwise_scores(truth: dict[str, str], predicted: dict[str, str]) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering: over all pairs of items, a pair is
    predicted together when both have the same predicted label, truly together when both
    have the same true label."""
    keys = sorted(truth)
    tp = fp = fn = 0
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            same_true = truth[a] == truth[b]
            same_pred = predicted[a] == predicted[b]
            tp += same_true and same_pred
            fp += same_pred and not same_true
            fn += same_true and not same_pred
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall


def write_pages(corpus: list[CorpusArticle], directory: Path) -> None:
    """For inspection: write every page under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for a in corpus:
        if a.html is not None:
            (directory / f"{a.key}.html").write_text(a.html, encoding="utf-8")
