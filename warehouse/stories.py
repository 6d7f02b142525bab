"""Stories in the warehouse: sign new articles, cluster them against recent ones, keep ``stories``.

:func:`update_stories` works from the warehouse's state, so any caller can run it at any time and
it does only what is missing: articles with no signature (or one older than the article's last
rewrite, or of an older :data:`~extractors.stories.SCHEME`) are signed, and those with no story
are clustered (extractors/stories.py) against the articles already in stories within the time
window, whose stored signatures are read back (never recomputed). Work goes in batches in time
order, one transaction each: signatures (one Arrow insert), story ids (one UPDATE from an Arrow
view) and the affected ``stories`` rows (recomputed by one INSERT ... SELECT).

An article keeps its story once it has one (a later retry that fetches the full text updates the
signature only), so story ids are stable and re-running changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import duckdb

from newsmon.extractors.pipeline import batches
from newsmon.extractors.stories import (
    SCHEME,
    Assignment,
    MinHash,
    Signature,
    StoryItem,
    StoryParams,
    cluster,
    signature,
)
from newsmon.warehouse.store import (
    batch_view,
    bulk_insert,
    keys_param,
    now_utc,
    retry_conflicts,
    sql_in_keys,
    transaction,
)


@dataclass
class StoriesSummary:
    signed: int = 0  # articles (re)signed
    clustered: int = 0  # articles given a story
    new_stories: int = 0
    joined: int = 0  # articles that joined an existing or new story as a copy


@dataclass(frozen=True)
class SignatureRow:
    article_id: str
    scheme: int
    body_shingles: int | None
    body_minhash: bytes | None
    head_shingles: int | None
    head_minhash: bytes | None
    matched_article_id: str | None
    similarity: float | None
    computed_at: datetime


@dataclass(frozen=True)
class _StoryRow:
    article_id: str
    story_id: str


@dataclass(frozen=True)
class _Pending:
    article_id: str
    at: datetime
    story_id: str | None
    title: str | None
    summary: str | None
    text: str | None


_AT = "coalesce(a.published_at, a.first_seen_at)"


def _pending(con: duckdb.DuckDBPyConnection, only: Sequence[str] | None) -> list[_Pending]:
    """Articles that need a signature or a story (among ``only``, when given), oldest first."""
    restrict = "" if only is None else f"AND {sql_in_keys('a.article_id')}"
    rows = con.execute(
        f"""
        SELECT a.article_id, {_AT}, a.story_id, a.title, a.summary, a.text
        FROM articles a LEFT JOIN story_signatures s USING (article_id)
        WHERE (a.story_id IS NULL OR s.article_id IS NULL OR s.scheme <> ?
               OR s.computed_at < a.updated_at)
          {restrict}
        ORDER BY {_AT}, a.article_id
        """,
        [SCHEME] if only is None else [SCHEME, keys_param(only)],
    ).fetchall()
    return [_Pending(*r) for r in rows]


def _minhash(data: bytes | None, size: int | None) -> MinHash | None:
    return MinHash.from_bytes(data, size) if data is not None and size else None


def _known(
    con: duckdb.DuckDBPyConnection,
    start: datetime,
    end: datetime,
    exclude: Sequence[str],
) -> list[StoryItem]:
    """Articles already in stories, published between ``start`` and ``end``, with signatures."""
    rows = con.execute(
        f"""
        SELECT a.article_id, {_AT}, a.story_id,
               s.body_minhash, s.body_shingles, s.head_minhash, s.head_shingles
        FROM articles a JOIN story_signatures s USING (article_id)
        WHERE a.story_id IS NOT NULL AND s.scheme = ?
          AND {_AT} BETWEEN ? AND ? AND NOT {sql_in_keys("a.article_id")}
        ORDER BY {_AT}, a.article_id
        """,
        [SCHEME, start, end, keys_param(exclude)],
    ).fetchall()
    return [
        StoryItem(r[0], r[1], Signature(_minhash(r[3], r[4]), _minhash(r[5], r[6])), r[2])
        for r in rows
    ]


def _signature_row(
    article_id: str, sig: Signature, assignment: Assignment | None, now: datetime
) -> SignatureRow:
    return SignatureRow(
        article_id=article_id,
        scheme=SCHEME,
        body_shingles=sig.body.size if sig.body else None,
        body_minhash=sig.body.to_bytes() if sig.body else None,
        head_shingles=sig.head.size if sig.head else None,
        head_minhash=sig.head.to_bytes() if sig.head else None,
        matched_article_id=assignment.matched if assignment else None,
        similarity=assignment.similarity if assignment else None,
        computed_at=now,
    )


def update_stories(
    con: duckdb.DuckDBPyConnection,
    params: StoryParams | None = None,
    *,
    batch_size: int = 1000,
    only: Sequence[str] | None = None,
) -> StoriesSummary:
    """Sign and cluster every article that needs it (see the module docstring); with
    ``only``, just those of these articles that need it (a load's own batch)."""
    params = params or StoryParams()
    summary = StoriesSummary()
    for batch in batches(_pending(con, only), batch_size):
        signatures = {p.article_id: signature(p.title, p.summary, p.text) for p in batch}
        assignments = _cluster_batch(con, batch, signatures, params)
        summary.signed += len(batch)
        summary.clustered += len(assignments)
        summary.new_stories += sum(a.matched is None for a in assignments)
        summary.joined += sum(a.matched is not None for a in assignments)
    return summary


@retry_conflicts
def _cluster_batch(
    con: duckdb.DuckDBPyConnection,
    batch: Sequence[_Pending],
    signatures: dict[str, Signature],
    params: StoryParams,
) -> list[Assignment]:
    """Cluster one batch against the stored stories and write it, in one transaction: the
    stories it reads are those it writes against (on a DuckLake, a commit by another writer
    since the transaction began makes it run again, with their stories)."""
    now = now_utc()
    new = [StoryItem(p.article_id, p.at, signatures[p.article_id]) for p in batch if not p.story_id]
    with transaction(con):
        assignments: dict[str, Assignment] = {}
        if new:
            known = _known(
                con,
                min(i.at for i in new) - params.window,
                max(i.at for i in new) + params.window,
                [p.article_id for p in batch],
            )
            assignments = {a.article_id: a for a in cluster(new, known, params)}
        # an article re-signed after a retry keeps its story and the match that put it there
        resigned = [p.article_id for p in batch if p.story_id]
        previous = {
            r[0]: (r[1], r[2])
            for r in con.execute(
                "SELECT article_id, matched_article_id, similarity FROM story_signatures "
                f"WHERE {sql_in_keys('article_id')}",
                [keys_param(resigned)],
            ).fetchall()
        }
        rows = []
        for p in batch:
            row = _signature_row(
                p.article_id, signatures[p.article_id], assignments.get(p.article_id), now
            )
            if p.article_id in previous:
                matched, similarity = previous[p.article_id]
                row = replace(row, matched_article_id=matched, similarity=similarity)
            rows.append(row)
        bulk_insert(con, "story_signatures", rows, key=("article_id",), update=True)
        story_rows = [_StoryRow(a.article_id, a.story_id) for a in assignments.values()]
        if story_rows:
            with batch_view(con, "_batch_story_ids", story_rows) as (view, _):
                con.execute(
                    f"""
                    UPDATE articles SET story_id = b.story_id
                    FROM {view} AS b WHERE articles.article_id = b.article_id
                    """
                )
            refresh_stories(con, sorted({a.story_id for a in assignments.values()}))
    return list(assignments.values())


_STORY_ROWS = """
WITH members AS (
    SELECT a.story_id, a.article_id, a.title,
           coalesce(a.published_at, a.first_seen_at) AS seen,
           coalesce(a.site_name, f.name, regexp_extract(a.url, '^[a-z]+://([^/:]+)', 1)) AS outlet,
           a.extraction_status IN ('extracted', 'baseline') AS has_text,
           length(coalesce(a.text, '')) AS text_chars,
           coalesce(m.score, 0) AS score
    FROM articles a
    LEFT JOIN feeds f ON f.feed_id = a.feed_id
    LEFT JOIN (SELECT article_id, max(score) AS score FROM article_matches GROUP BY article_id) m
        ON m.article_id = a.article_id
    WHERE a.story_id IS NOT NULL {where}
), outlets AS (
    SELECT story_id, count(*) AS n, list(outlet ORDER BY first_at, outlet) AS names
    FROM (SELECT story_id, outlet, min(seen) AS first_at FROM members GROUP BY story_id, outlet)
    GROUP BY story_id
)
SELECT m.story_id,
       first(m.title ORDER BY m.has_text DESC, m.score DESC, m.text_chars DESC, m.seen,
             m.article_id),
       min(m.seen), max(m.seen),
       first(m.article_id ORDER BY m.seen, m.article_id),
       first(m.article_id ORDER BY m.has_text DESC, m.score DESC, m.text_chars DESC, m.seen,
             m.article_id),
       count(*), any_value(o.n), any_value(o.names), $now
FROM members m JOIN outlets o ON o.story_id = m.story_id
GROUP BY m.story_id
"""


def refresh_stories(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str] | None = None) -> None:
    """Recompute the ``stories`` rows of ``story_ids`` (every story when None) from their
    articles: count, outlets, first and best article. Runs in the caller's transaction."""
    now = now_utc()
    if story_ids is None:
        con.execute("DELETE FROM stories")
        con.execute(f"INSERT INTO stories {_STORY_ROWS.format(where='')}", {"now": now})
        return
    if not story_ids:
        return
    ids = keys_param(story_ids)
    con.execute(f"DELETE FROM stories WHERE {sql_in_keys('story_id', '$ids')}", {"ids": ids})
    where = f"AND {sql_in_keys('a.story_id', '$ids')}"
    con.execute(f"INSERT INTO stories {_STORY_ROWS.format(where=where)}", {"now": now, "ids": ids})


__all__ = ["SignatureRow", "StoriesSummary", "refresh_stories", "update_stories"]
