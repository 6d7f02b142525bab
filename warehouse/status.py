"""What ``newsmon status`` shows: counts, the last run, and each feed's health."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from newsmon.warehouse.store import Table, run_query


@dataclass(frozen=True)
class WarehouseStatus:
    articles: int
    baseline: int
    extracted: int
    failed: int
    relevant: int
    last_run: Table | None
    feeds: Table


def warehouse_status(con: duckdb.DuckDBPyConnection) -> WarehouseStatus:
    counts = con.execute(
        """
        SELECT count(*),
               count(*) FILTER (WHERE is_baseline),
               count(*) FILTER (WHERE extraction_status = 'extracted'),
               count(*) FILTER (WHERE extraction_status = 'failed'),
               (SELECT count(DISTINCT article_id) FROM article_matches WHERE relevant)
        FROM articles
        """
    ).fetchone()
    assert counts is not None
    last_run = run_query(
        con,
        """
        SELECT run_id, started_at, finished_at, feeds_total, feeds_ok, feeds_not_modified,
               feeds_failed, articles_new, articles_failed, articles_relevant
        FROM runs ORDER BY started_at DESC LIMIT 1
        """,
    )
    feeds = run_query(
        con,
        """
        SELECT f.name, f.last_status AS status, f.last_reason AS reason,
               f.last_success_at AS last_success, f.error_streak,
               count(i.guid) AS items,
               round(count(i.guid) FILTER (WHERE i.first_seen_at > now() - INTERVAL 7 DAY) / 7.0, 1)
                   AS items_per_day,
               strftime(f.next_poll_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M') AS next_poll_utc,
               f.schedule_reason AS why
        FROM feeds f LEFT JOIN feed_items i USING (feed_id)
        GROUP BY ALL ORDER BY f.error_streak DESC, f.name
        """,
    )
    return WarehouseStatus(
        articles=counts[0],
        baseline=counts[1],
        extracted=counts[2],
        failed=counts[3],
        relevant=counts[4],
        last_run=last_run if last_run.rows else None,
        feeds=feeds,
    )


__all__ = ["WarehouseStatus", "warehouse_status"]
