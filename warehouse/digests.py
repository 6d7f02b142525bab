"""What a digest contains and the delivery log that makes it exactly-once.

Selection: the relevant articles of a subscription's topics (at least its ``min_score``, in its
languages) that no *sent* digest of that subscription has contained, first seen at most
``backfill_days`` before the subscription's first digest. Copies of one story (the same story
id from clustering, content hash, canonical URL, or the same title) are grouped:
the strongest copy leads, the other outlets are listed under it. Stories are ordered strongest
first, then newest.

Each e-mail recipient has a delivery log of their own (one message each, with its own
unsubscribe link): the functions take the ``recipient`` (None for a webhook), and a digest
recorded before schema version 7, which went to every recipient at once (``recipient`` NULL),
counts for each address its ``recipients`` listed (:data:`_FOR`).

Delivery log: :func:`record_digest` writes the digest (status ``sending``) and its items before
the message goes out; :func:`finish_digest` marks it ``sent`` only after the SMTP server has
accepted it, or ``failed`` with a reason. Only ``sent`` digests exclude their items from later
selections, so a failed send leaves every item for the next run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from newsmon.core.records import DigestArticle, DigestStory, FailingFeed
from newsmon.extractors.query import folded_words_of
from newsmon.warehouse.store import bulk_insert, retry_conflicts, transaction

EXTRACT_CHARS = 280


# --------------------------------------------------------------------------- selection


# one delivery log: an address's own rows (any case), and the rows from before schema
# version 7 (recipient NULL) that listed it; a webhook's (``$to`` NULL): the NULL rows
_FOR = """subscription = $sub AND (
    lower(recipient) = lower($to)
    OR (recipient IS NULL AND ($to IS NULL
        OR list_contains(list_transform(recipients, r -> lower(r)), lower($to)))))"""


def selection_start(
    con: duckdb.DuckDBPyConnection,
    subscription: str,
    recipient: str | None,
    backfill_days: int,
    now: datetime,
) -> datetime:
    """Items first seen before this are never sent: the first digest's time minus the backfill
    (so an address added later starts with the backfill, not the subscription's history)."""
    row = con.execute(
        f"SELECT min(started_at) FROM digests WHERE {_FOR}", {"sub": subscription, "to": recipient}
    ).fetchone()
    first = row[0] if row and row[0] is not None else now
    return first - timedelta(days=backfill_days)


def candidates(
    con: duckdb.DuckDBPyConnection,
    subscription: str,
    recipient: str | None,
    topics: Sequence[str],
    min_score: float,
    languages: Sequence[str],
    since: datetime,
) -> list[DigestArticle]:
    """Relevant articles for a subscription that no digest sent to ``recipient`` contained."""
    rows = con.execute(
        f"""
        WITH best AS (
            SELECT article_id, max(score) AS score, arg_max(topic, score) AS topic,
                   arg_max(explanation, score) AS explanation
            FROM article_matches
            WHERE relevant AND list_contains($topics::VARCHAR[], topic) AND score >= $min
            GROUP BY article_id
        ), sent AS (
            SELECT article_id FROM digest_items WHERE digest_id IN (
                SELECT digest_id FROM digests WHERE status = 'sent' AND {_FOR})
        )
        SELECT a.article_id, a.title, coalesce(a.final_url, a.url), a.canonical_url,
               coalesce(a.site_name, f.title, f.name, ''), a.published_at, a.first_seen_at,
               coalesce(a.text, a.summary, ''), a.content_hash, a.duplicate_of,
               b.score, b.topic, b.explanation, a.story_id
        FROM best b JOIN articles a USING (article_id) LEFT JOIN feeds f USING (feed_id)
        WHERE NOT a.is_baseline
          AND a.first_seen_at >= $since
          AND (len($langs::VARCHAR[]) = 0
               OR list_contains($langs::VARCHAR[],
                                lower(coalesce(a.detected_language, a.language))))
          AND a.article_id NOT IN (SELECT article_id FROM sent)
        ORDER BY b.score DESC, a.published_at DESC NULLS LAST, a.article_id
        """,
        {
            "topics": list(topics),
            "min": min_score,
            "sub": subscription,
            "to": recipient,
            "since": since,
            "langs": list(languages),
        },
    ).fetchall()
    out = []
    for r in rows:
        (aid, title, url, canonical, outlet, published, first_seen, body, chash, dup_of) = r[:10]
        score, topic, explanation, story_id = r[10], r[11], r[12], r[13]
        entities, terms = why_matched(explanation)
        keys = [f"id:{dup_of or aid}", f"url:{canonical}"]
        if story_id:
            keys.append(f"story:{story_id}")
        if chash:
            keys.append(f"hash:{chash}")
        title_key = _title_key(title or "")
        if title_key:
            keys.append(f"title:{title_key}")
        out.append(
            DigestArticle(
                article_id=aid,
                title=title or url,
                url=url,
                outlet=outlet,
                published_at=published,
                first_seen_at=first_seen,
                score=float(score),
                topic=topic,
                extract=extract_of(body, title=title or ""),
                entities=entities,
                terms=terms,
                group_keys=tuple(keys),
            )
        )
    return out


def _title_key(title: str) -> str:
    """Titles equal but for case, accents and punctuation; short titles never group."""
    words = folded_words_of(title)
    return " ".join(words) if len(words) >= 4 else ""


def why_matched(explanation: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Entity names and query terms that counted for a match, strongest first."""
    data = json.loads(explanation) if isinstance(explanation, str) else explanation or {}
    entities: list[str] = []
    terms: list[str] = []
    # a model's verdict: the evidence it weighed positively, strongest first; else the rules'
    learned = (data.get("model") or {}).get("contributions")
    evidence = data.get("evidence", [])
    if learned is not None:
        by_name = {f"{e.get('kind')}:{e.get('name')}": e for e in evidence}
        evidence = [
            {**by_name[name], "contribution": value}
            for name, value in learned.items()
            if name in by_name
        ]
    for e in evidence:
        if float(e.get("contribution", 0)) <= 0:
            continue
        if e.get("kind") == "entity":
            entities.append(str(e.get("label") or e.get("name")))
        elif e.get("kind") == "query":
            terms.extend(str(t).strip('"') for t in e.get("terms", []))
    return tuple(dict.fromkeys(entities))[:5], tuple(dict.fromkeys(terms))[:5]


def extract_of(body: str, limit: int = EXTRACT_CHARS, title: str = "") -> str:
    """The opening of the text, cut at a sentence end if one is near, else at a word.

    Extracted pages often open with a section label and the headline again ("Industry EU signs
    ... winners BRUSSELS — ..."): when the title appears near the start, the extract begins
    after it.
    """
    text = " ".join(body.split())
    title = " ".join(title.split())
    if title:
        at = text.find(title, 0, len(title) + 60)
        if at >= 0:
            text = text[at + len(title) :].lstrip(" .:-—–")
    if len(text) <= limit:
        return text
    cut = text[:limit]
    sentence = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if sentence >= limit // 2:
        return cut[: sentence + 1]
    return cut.rsplit(" ", 1)[0].rstrip(",;:") + " …"


def group_stories(articles: Sequence[DigestArticle]) -> list[DigestStory]:
    """Group copies of one story (any shared key), keeping the input order of first appearance.

    The input is strongest first, so each story's lead is its strongest copy.
    """
    parent = list(range(len(articles)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for i, a in enumerate(articles):
        for key in a.group_keys:
            j = first_with.setdefault(key, i)
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    members: dict[int, list[DigestArticle]] = {}
    for i, a in enumerate(articles):
        members.setdefault(find(i), []).append(a)
    return [DigestStory(group[0], tuple(group[1:])) for _, group in sorted(members.items())]


# --------------------------------------------------------------------------- delivery log


@dataclass(frozen=True)
class _Item:
    digest_id: str
    subscription: str
    article_id: str
    story_rank: int | None
    is_lead: bool


@retry_conflicts
def record_digest(
    con: duckdb.DuckDBPyConnection,
    *,
    digest_id: str,
    subscription: str,
    recipient: str | None,
    recipients: Sequence[str],
    subject: str,
    message_id: str,
    shown: Sequence[DigestStory],
    not_shown: Sequence[DigestStory],
    now: datetime,
    status: str = "sending",
) -> None:
    """Write the digest and its items before sending; items beyond ``max_items`` are recorded
    with no rank: counted in the digest, never offered again."""
    items = [
        _Item(digest_id, subscription, a.article_id, rank, a is story.lead)
        for rank, story in enumerate(shown, start=1)
        for a in story.articles
    ] + [
        _Item(digest_id, subscription, a.article_id, None, a is story.lead)
        for story in not_shown
        for a in story.articles
    ]
    with transaction(con):
        con.execute(
            """
            INSERT INTO digests (digest_id, subscription, recipient, started_at, status,
                                 recipients, subject, message_id, stories, articles)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                digest_id,
                subscription,
                recipient,
                now,
                status,
                list(recipients),
                subject,
                message_id,
                len(shown),
                sum(len(s.articles) for s in shown),
            ],
        )
        bulk_insert(con, "digest_items", items)


@retry_conflicts
def record_empty(
    con: duckdb.DuckDBPyConnection, digest_id: str, subscription: str, recipient: str | None,
    recipients: Sequence[str], now: datetime,
) -> None:  # fmt: skip
    """A due digest with nothing to send: recorded so the schedule moves on."""
    with transaction(con):
        con.execute(
            """
            INSERT INTO digests
                (digest_id, subscription, recipient, started_at, finished_at, status, recipients)
            VALUES (?, ?, ?, ?, ?, 'empty', ?)
            """,
            [digest_id, subscription, recipient, now, now, list(recipients)],
        )


@retry_conflicts
def finish_digest(
    con: duckdb.DuckDBPyConnection,
    digest_id: str,
    status: str,
    now: datetime,
    reason: str | None = None,
    error: str | None = None,
) -> None:
    with transaction(con):
        con.execute(
            "UPDATE digests SET status = ?, finished_at = ?, reason = ?, error = ? "
            "WHERE digest_id = ?",
            [status, now, reason, error, digest_id],
        )


def last_run(
    con: duckdb.DuckDBPyConnection, subscription: str, recipient: str | None
) -> datetime | None:
    """When a digest last went out to ``recipient`` or came up empty (the schedule's clock)."""
    row = con.execute(
        f"SELECT max(started_at) FROM digests WHERE {_FOR} AND status IN ('sent', 'empty')",
        {"sub": subscription, "to": recipient},
    ).fetchone()
    return row[0] if row else None


def failing_feeds(con: duckdb.DuckDBPyConnection, now: datetime) -> list[FailingFeed]:
    """Active feeds that have not been polled successfully for a day or more."""
    rows = con.execute(
        """
        SELECT name, url, last_reason, error_streak, last_success_at FROM feeds
        WHERE active AND error_streak > 0 AND coalesce(last_success_at, added_at) <= ?
        ORDER BY name
        """,
        [now - timedelta(days=1)],
    ).fetchall()
    return [FailingFeed(*r) for r in rows]


__all__ = [
    "DigestArticle",
    "DigestStory",
    "FailingFeed",
    "candidates",
    "extract_of",
    "failing_feeds",
    "finish_digest",
    "group_stories",
    "last_run",
    "record_digest",
    "record_empty",
    "selection_start",
    "why_matched",
]
