"""The warehouse schema as ordered, recorded migrations.

Each migration runs once, in order, inside a transaction, and is recorded in
``schema_migrations``. Never edit a released migration: add the next one. docs/schema.md
documents every table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema: feeds, fetches, articles, entities, matches, runs",
        """
        CREATE TABLE feeds (
            feed_id               VARCHAR PRIMARY KEY,  -- stable hash of the feed URL
            name                  VARCHAR NOT NULL,
            url                   VARCHAR NOT NULL UNIQUE,
            tags                  VARCHAR[],
            language              VARCHAR,
            poll_interval_minutes INTEGER,
            title                 VARCHAR,              -- as the feed calls itself
            site_url              VARCHAR,
            format                VARCHAR,              -- rss20, atom10, rss10, json1, ...
            etag                  VARCHAR,              -- for conditional GET
            last_modified         VARCHAR,
            added_at              TIMESTAMPTZ NOT NULL,
            last_polled_at        TIMESTAMPTZ,
            last_success_at       TIMESTAMPTZ,
            last_status           VARCHAR,              -- ok | not_modified | failed
            last_reason           VARCHAR,
            error_streak          INTEGER NOT NULL DEFAULT 0,
            active                BOOLEAN NOT NULL DEFAULT TRUE
        );

        CREATE TABLE runs (
            run_id          VARCHAR PRIMARY KEY,
            started_at      TIMESTAMPTZ NOT NULL,
            finished_at     TIMESTAMPTZ,
            feeds_total     INTEGER,
            feeds_ok        INTEGER,
            feeds_not_modified INTEGER,
            feeds_failed    INTEGER,
            articles_new    INTEGER,
            articles_failed INTEGER,
            articles_relevant INTEGER
        );

        CREATE TABLE feed_fetches (
            run_id        VARCHAR NOT NULL,
            feed_id       VARCHAR NOT NULL,
            fetched_at    TIMESTAMPTZ NOT NULL,
            status        VARCHAR NOT NULL,             -- ok | not_modified | failed
            http_status   INTEGER,
            reason        VARCHAR,                      -- extractors.reasons.Reason when failed
            error         VARCHAR,                      -- one-line detail
            duration_ms   INTEGER,
            bozo          BOOLEAN,
            entries_seen  INTEGER NOT NULL DEFAULT 0,
            entries_new   INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, feed_id)
        );

        CREATE TABLE articles (
            article_id         VARCHAR PRIMARY KEY,     -- stable hash of canonical_url
            canonical_url      VARCHAR NOT NULL UNIQUE,
            url                VARCHAR NOT NULL,        -- as linked from the feed
            final_url          VARCHAR,                 -- after redirects
            feed_id            VARCHAR,                 -- first feed seen in (NULL: baseline)
            guid               VARCHAR,
            title              VARCHAR,
            author             VARCHAR,
            published_at       TIMESTAMPTZ,
            fetched_at         TIMESTAMPTZ,
            language           VARCHAR,
            site_name          VARCHAR,
            description        VARCHAR,
            summary            VARCHAR,                 -- from the feed, plain text
            text               VARCHAR,                 -- main text extracted from the page
            extraction_status  VARCHAR NOT NULL,        -- extracted | empty | failed | baseline
            extraction_reason  VARCHAR,
            extraction_error   VARCHAR,
            fetch_attempts     INTEGER NOT NULL DEFAULT 0,
            http_status        INTEGER,
            content_hash       VARCHAR,                 -- of the normalised text (or summary)
            duplicate_of       VARCHAR,                 -- earlier article with the same content
            is_baseline        BOOLEAN NOT NULL DEFAULT FALSE,
            first_seen_at      TIMESTAMPTZ NOT NULL,
            updated_at         TIMESTAMPTZ NOT NULL
        );

        CREATE TABLE feed_items (
            feed_id       VARCHAR NOT NULL,
            guid          VARCHAR NOT NULL,
            article_id    VARCHAR NOT NULL,             -- the article it points to
            canonical_url VARCHAR NOT NULL,             -- the article's key (urn:... if no link)
            link          VARCHAR,                      -- NULL when the entry has no usable link
            title         VARCHAR,
            summary       VARCHAR,
            published_at  TIMESTAMPTZ,
            first_seen_at TIMESTAMPTZ NOT NULL,
            seen_order    INTEGER NOT NULL,             -- position in the run that first saw it
            PRIMARY KEY (feed_id, guid)
        );

        CREATE TABLE article_entities (
            article_id  VARCHAR NOT NULL,
            entity_id   VARCHAR NOT NULL,
            name        VARCHAR NOT NULL,
            type        VARCHAR NOT NULL,               -- org | person | programme | place
            count       INTEGER NOT NULL,
            first_pos   INTEGER NOT NULL,
            in_title    BOOLEAN NOT NULL,
            PRIMARY KEY (article_id, entity_id)
        );

        CREATE TABLE article_matches (
            article_id  VARCHAR NOT NULL,
            topic       VARCHAR NOT NULL,
            score       DOUBLE NOT NULL,
            relevant    BOOLEAN NOT NULL,
            explanation JSON,
            matched_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (article_id, topic)
        );
        """,
    ),
    Migration(
        2,
        "articles.detected_language: the language of the text, detected",
        """
        ALTER TABLE articles ADD COLUMN detected_language VARCHAR;
        """,
    ),
)


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       VARCHAR NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL
        )
        """
    )
    return {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the pending migrations in order; return the versions applied now."""
    done = applied_versions(con)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [migration.version, migration.name, datetime.now(UTC)],
            )
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied


def latest_version() -> int:
    return MIGRATIONS[-1].version


__all__ = ["MIGRATIONS", "Migration", "applied_versions", "latest_version", "migrate"]
