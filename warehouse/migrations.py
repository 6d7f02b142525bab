"""The warehouse schema as ordered, recorded migrations.

Each migration runs once, in order, inside a transaction, and is recorded in
``schema_migrations``. Never edit a released migration: add the next one. docs/schema.md
documents every table.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from newsmon.warehouse import lake


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
    Migration(
        3,
        "digests and digest_items: the e-mail delivery log",
        """
        CREATE TABLE digests (
            digest_id     VARCHAR PRIMARY KEY,
            subscription  VARCHAR NOT NULL,
            started_at    TIMESTAMPTZ NOT NULL,
            finished_at   TIMESTAMPTZ,
            status        VARCHAR NOT NULL,   -- sending | sent | empty | failed | dry_run
            reason        VARCHAR,            -- when failed: smtp_refused | smtp_unreachable | ...
            error         VARCHAR,            -- one-line detail, never a credential
            recipients    VARCHAR[] NOT NULL,
            subject       VARCHAR,
            message_id    VARCHAR,
            stories       INTEGER NOT NULL DEFAULT 0,
            articles      INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE digest_items (
            digest_id     VARCHAR NOT NULL,
            subscription  VARCHAR NOT NULL,
            article_id    VARCHAR NOT NULL,
            story_rank    INTEGER,            -- its story's position; NULL: counted, not shown
            is_lead       BOOLEAN NOT NULL,   -- the story's headline (others: other outlets)
            PRIMARY KEY (digest_id, article_id)
        );
        """,
    ),
    Migration(
        4,
        "stories (near-duplicate clusters), story signatures, analyst views",
        """
        ALTER TABLE articles ADD COLUMN story_id VARCHAR;

        CREATE TABLE stories (
            story_id          VARCHAR PRIMARY KEY,  -- article_id of the article that founded it
            title             VARCHAR,              -- the best article's title
            first_seen_at     TIMESTAMPTZ,          -- earliest article (published, else first seen)
            last_seen_at      TIMESTAMPTZ,          -- latest article
            first_article_id  VARCHAR,              -- the earliest article: who broke it
            best_article_id   VARCHAR,              -- the copy to read (full text, top score)
            article_count     INTEGER NOT NULL,
            outlet_count      INTEGER NOT NULL,
            outlets           VARCHAR[],            -- outlets, in order of first publication
            updated_at        TIMESTAMPTZ NOT NULL
        );

        CREATE TABLE story_signatures (
            article_id          VARCHAR PRIMARY KEY,
            scheme              SMALLINT NOT NULL,  -- extractors.stories.SCHEME
            body_shingles       INTEGER,            -- shingles in the text (NULL: no usable text)
            body_minhash        BLOB,               -- 128 little-endian uint32
            head_shingles       INTEGER,            -- shingles in title + summary (or lead)
            head_minhash        BLOB,
            matched_article_id  VARCHAR,            -- the earlier copy it was found to duplicate
            similarity          DOUBLE,             -- estimated Jaccard with that copy
            computed_at         TIMESTAMPTZ NOT NULL
        );

        CREATE VIEW relevant_articles AS
        SELECT m.topic, m.score, a.article_id, a.story_id,
               coalesce(a.published_at, a.first_seen_at) AS published_at,
               CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE) AS day,
               coalesce(a.site_name, f.name) AS outlet, f.name AS feed, a.title, a.url,
               coalesce(a.detected_language, a.language) AS language, a.extraction_status,
               a.is_baseline, s.article_count AS story_articles,
               coalesce(a.article_id = s.best_article_id, true) AS story_best
        FROM article_matches m
        JOIN articles a USING (article_id)
        LEFT JOIN feeds f ON f.feed_id = a.feed_id
        LEFT JOIN stories s ON s.story_id = a.story_id
        WHERE m.relevant;

        CREATE VIEW daily_topic_counts AS
        SELECT CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE) AS day,
               m.topic,
               count(*) AS articles,
               count(*) FILTER (WHERE m.relevant) AS relevant,
               count(DISTINCT coalesce(a.story_id, a.article_id)) FILTER (WHERE m.relevant)
                   AS relevant_stories,
               round(avg(m.score) FILTER (WHERE m.relevant), 3) AS mean_relevant_score
        FROM article_matches m JOIN articles a USING (article_id)
        WHERE NOT a.is_baseline
        GROUP BY ALL;

        CREATE VIEW entity_mentions_daily AS
        SELECT CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE) AS day,
               e.entity_id, e.name, e.type,
               count(*) AS articles,
               sum(e.count) AS mentions,
               count(DISTINCT coalesce(a.story_id, a.article_id)) AS stories,
               count(*) FILTER (WHERE e.in_title) AS in_title,
               count(*) FILTER (WHERE r.article_id IS NOT NULL) AS in_relevant
        FROM article_entities e
        JOIN articles a USING (article_id)
        LEFT JOIN (SELECT DISTINCT article_id FROM article_matches WHERE relevant) r
            ON r.article_id = e.article_id
        WHERE NOT a.is_baseline
        GROUP BY ALL;

        CREATE VIEW story_timeline AS
        SELECT a.story_id, s.title AS story_title, s.article_count AS story_articles,
               row_number() OVER (
                   PARTITION BY a.story_id
                   ORDER BY coalesce(a.published_at, a.first_seen_at), a.article_id
               ) AS position,
               coalesce(a.published_at, a.first_seen_at) AS published_at,
               coalesce(a.published_at, a.first_seen_at) - s.first_seen_at AS after_first,
               coalesce(a.site_name, f.name) AS outlet, f.name AS feed, a.title, a.url,
               a.article_id, a.article_id = s.best_article_id AS is_best,
               g.matched_article_id, g.similarity
        FROM articles a
        JOIN stories s ON s.story_id = a.story_id
        LEFT JOIN feeds f ON f.feed_id = a.feed_id
        LEFT JOIN story_signatures g ON g.article_id = a.article_id;

        CREATE VIEW feed_health AS
        WITH polls AS (
            SELECT feed_id,
                   count(*) AS polls_7d,
                   count(*) FILTER (WHERE status = 'failed') AS failed_7d,
                   count(*) FILTER (WHERE status = 'not_modified') AS not_modified_7d,
                   sum(entries_new) AS new_entries_7d,
                   CAST(round(median(duration_ms)) AS INTEGER) AS median_ms_7d
            FROM feed_fetches WHERE fetched_at > now() - INTERVAL 7 DAY
            GROUP BY feed_id
        ), relevant AS (
            SELECT DISTINCT article_id FROM article_matches WHERE relevant
        ), pages AS (
            SELECT a.feed_id,
                   count(*) AS articles,
                   count(*) FILTER (WHERE a.extraction_status IN ('failed', 'empty'))
                       AS pages_failed,
                   count(r.article_id) AS relevant,
                   max(coalesce(a.published_at, a.first_seen_at)) AS latest_article_at
            FROM articles a LEFT JOIN relevant r ON r.article_id = a.article_id
            WHERE a.feed_id IS NOT NULL
            GROUP BY a.feed_id
        )
        SELECT f.name, f.url, f.active, f.last_status, f.last_reason, f.error_streak,
               f.last_polled_at, f.last_success_at,
               coalesce(p.polls_7d, 0) AS polls_7d, coalesce(p.failed_7d, 0) AS failed_7d,
               coalesce(p.not_modified_7d, 0) AS not_modified_7d,
               coalesce(p.new_entries_7d, 0) AS new_entries_7d, p.median_ms_7d,
               coalesce(g.articles, 0) AS articles, coalesce(g.pages_failed, 0) AS pages_failed,
               coalesce(g.relevant, 0) AS relevant, g.latest_article_at
        FROM feeds f
        LEFT JOIN polls p ON p.feed_id = f.feed_id
        LEFT JOIN pages g ON g.feed_id = f.feed_id;
        """,
    ),
    Migration(
        5,
        "feeds: per-feed poll schedule",
        """
        ALTER TABLE feeds ADD COLUMN next_poll_at TIMESTAMPTZ;  -- NULL: due now
        ALTER TABLE feeds ADD COLUMN rate_per_hour DOUBLE;      -- new items per hour, smoothed
        ALTER TABLE feeds ADD COLUMN schedule_reason VARCHAR;   -- rate, ttl, backoff, ...
        """,
    ),
    Migration(
        6,
        "relevance models: article embeddings, analysts' labels, the model behind each match",
        """
        -- the text's embedding (extractors.embedding), computed once: rescoring and training
        -- read it instead of embedding the text again; text_key names the text it came from
        CREATE TABLE article_embeddings (
            article_id  VARCHAR PRIMARY KEY,
            encoder     VARCHAR NOT NULL,
            text_key    VARCHAR NOT NULL,
            vector      BLOB NOT NULL,       -- float32 x 384, little-endian
            embedded_at TIMESTAMPTZ NOT NULL
        );
        -- an analyst's verdict on an article for a topic; the latest per article, topic and
        -- analyst counts (earlier ones are kept as history)
        CREATE TABLE labels (
            article_id  VARCHAR NOT NULL,
            topic       VARCHAR NOT NULL,
            relevant    BOOLEAN NOT NULL,
            note        VARCHAR,
            labelled_by VARCHAR NOT NULL,
            labelled_at TIMESTAMPTZ NOT NULL
        );
        ALTER TABLE article_matches ADD COLUMN model_version VARCHAR;  -- NULL: keyword filter
        """,
    ),
    Migration(
        7,
        "self-service subscriptions, unsubscribes, one digest row per e-mail recipient",
        """
        -- subscriptions made in the reading room, beside those of alerts.toml (same keys and
        -- meaning; core.alerts validates both); a name in alerts.toml wins
        CREATE TABLE subscriptions (
            name          VARCHAR PRIMARY KEY,
            recipients    VARCHAR[] NOT NULL,
            topics        VARCHAR[] NOT NULL,
            min_score     DOUBLE NOT NULL,
            frequency     VARCHAR NOT NULL,
            at_time       VARCHAR NOT NULL,   -- alerts.toml's "at": "07:30", local time
            weekday       VARCHAR NOT NULL,   -- alerts.toml's "day": "monday" (weekly)
            timezone      VARCHAR NOT NULL,
            max_items     INTEGER NOT NULL,
            languages     VARCHAR[] NOT NULL,
            channel       VARCHAR NOT NULL,   -- email | slack | teams | webhook
            url           VARCHAR NOT NULL,   -- a webhook's address (a credential; never shown)
            paused        BOOLEAN NOT NULL,
            created_by    VARCHAR NOT NULL,
            created_at    TIMESTAMPTZ NOT NULL,
            updated_by    VARCHAR NOT NULL,
            updated_at    TIMESTAMPTZ NOT NULL
        );
        -- who left which subscription (the digests' one-click link, or the reading room); a
        -- subscription of either kind no longer writes to them
        CREATE TABLE unsubscribes (
            subscription    VARCHAR NOT NULL,
            recipient       VARCHAR NOT NULL,
            unsubscribed_at TIMESTAMPTZ NOT NULL,
            via             VARCHAR NOT NULL,  -- link | web:<user>
            PRIMARY KEY (subscription, recipient)
        );
        -- an e-mail digest now goes to one recipient per message (each with its own
        -- unsubscribe link): the address it went to; NULL for a webhook, and for digests
        -- before this version, which went to every recipient at once
        ALTER TABLE digests ADD COLUMN recipient VARCHAR;
        """,
    ),
    Migration(
        8,
        "the reading room's readers: read marks and saved searches",
        """
        -- an article a reader has read (opening its page, or "mark read"); a story counts as
        -- read by them when any of its copies is
        CREATE TABLE reads (
            user_name   VARCHAR NOT NULL,
            article_id  VARCHAR NOT NULL,
            read_at     TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (user_name, article_id)
        );
        -- a reader's named search (the Search page's words and topic), with its Atom feed
        CREATE TABLE saved_searches (
            user_name   VARCHAR NOT NULL,
            name        VARCHAR NOT NULL,
            query       VARCHAR NOT NULL,
            topic       VARCHAR,
            created_at  TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (user_name, name)
        );
        """,
    ),
)


_VERSIONS_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       VARCHAR NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL
    )
"""


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    ddl = (
        lake.without_constraints(_VERSIONS_TABLE)
        if lake.is_lake_connection(con)
        else _VERSIONS_TABLE
    )
    con.execute(ddl)
    return {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def _up_to_date(con: duckdb.DuckDBPyConnection) -> bool:
    """Every migration applied (one cheap query: most connections find nothing to do)."""
    try:
        row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except duckdb.CatalogException:  # a new warehouse
        return False
    return bool(row and row[0] == latest_version())


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the pending migrations in order; return the versions applied now.

    On a DuckLake warehouse the statements run without key constraints
    (:func:`newsmon.warehouse.lake.without_constraints`) and each migration takes a write turn, so
    two processes migrating one new lake at once conflict and the later one (run again by the
    caller, see ``store.connect``) finds the work done.
    """
    if _up_to_date(con):
        return []
    on_lake = lake.is_lake_connection(con)
    if on_lake:
        lake.ensure_turns(con)
    done = applied_versions(con)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            if on_lake:
                lake.take_turn(con)
                # another process may have applied it since `done` was read: ask again inside
                # the transaction, whose turn conflicts with any later commit
                if con.execute(
                    "SELECT count(*) FROM schema_migrations WHERE version = ?", [migration.version]
                ).fetchone() != (0,):
                    con.execute("ROLLBACK")
                    continue
            con.execute(lake.without_constraints(migration.sql) if on_lake else migration.sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [migration.version, migration.name, datetime.now(UTC)],
            )
        except duckdb.Error:
            with suppress(duckdb.TransactionException):  # DuckLake may have ended it already
                con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        applied.append(migration.version)
    return applied


def latest_version() -> int:
    return MIGRATIONS[-1].version


__all__ = ["MIGRATIONS", "Migration", "applied_versions", "latest_version", "migrate"]
