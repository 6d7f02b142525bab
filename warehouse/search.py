"""Full-text search over the articles: DuckDB's ``fts`` extension (BM25), offline.

The extension binary comes from the pinned ``duckdb-extension-fts`` package (the same version as
``duckdb``) and is loaded from its path, so nothing is downloaded: ``INSTALL fts`` would need the
network. :func:`refresh_index` rebuilds the index (``fts_main_articles``: title, summary and
text, Porter stemmer, English stop words, accents stripped) from every article: the first ingest
calls it. After that the index is kept current in place: :func:`index_articles` adds (or
replaces) the articles a load writes, in the load's own transaction, with the index's own
tokenizer, stemmer and stop words, so an ingest never re-reads the warehouse and the index never
lags the articles. :func:`search` ranks articles with ``match_bm25``.

The index is DuckDB's own layout (``docs``, ``terms``, ``dict`` with document frequencies,
``stats``), which ``match_bm25`` reads at query time; adding documents updates the document
frequencies and statistics exactly, so scores equal a full rebuild's
(tests/warehouse/test_search_index.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb

from newsmon.core.crashpoints import pause_point
from newsmon.core.errors import WarehouseError
from newsmon.warehouse import extensions, lake
from newsmon.warehouse.store import Table, keys_param, retry_conflicts, sql_in_keys, transaction

INDEX_SCHEMA = "fts_main_articles"


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load the ``fts`` extension into ``con`` from its package, without network."""
    extensions.load(con, "fts")


def has_index(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_schemas() "
        "WHERE database_name = current_database() AND schema_name = ?",
        [INDEX_SCHEMA],
    ).fetchone()
    return bool(row and row[0])


_FIELDS = ("title", "summary", "text")  # the articles' columns the index covers, in order
_STEMMER = "porter"
_CREATE_INDEX = (
    f"PRAGMA create_fts_index('articles', 'article_id', {', '.join(repr(f) for f in _FIELDS)}, "
    f"stemmer = '{_STEMMER}', stopwords = 'english', strip_accents = 1, lower = 1, overwrite = 1)"
)
# the index's macros as the fts extension declares them (DuckDB's fts documentation); a lake's
# copy needs them spelled out (warehouse.lake.copy_schema)
_MACRO_PARAMETERS = {
    "match_bm25": (
        "docname",
        "query_string",
        "fields := ''",  # see _lake_macro
        "k := 1.2",
        "b := 0.75",
        "conjunctive := 0",
    ),
    "tokenize": ("s",),
}


def _lake_macro(name: str, definition: str) -> str:
    """A macro's body as a lake stores it. DuckLake refuses an untyped NULL default and keeps
    a typed one as the text 'NULL' (DuckLake 1.5.5), so match_bm25's ``fields`` (NULL: every
    field) defaults to '' there, which the body must read as "every field" too."""
    if name != "match_bm25":
        return definition
    every_field = "(fields IS NULL)"
    if every_field not in definition:
        raise WarehouseError(
            "the fts extension's match_bm25 changed: update warehouse.search._lake_macro"
        )
    return definition.replace(every_field, "(fields IS NULL OR fields = '')")


@retry_conflicts
def refresh_index(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)build the BM25 index over every article's title, summary and text."""
    load_fts(con)
    if not lake.is_lake_connection(con):
        with transaction(con):  # a build killed half-way leaves the index it replaced, or none
            con.execute(_CREATE_INDEX)
            pause_point("index")  # crash-test hook: the index built, not committed
        return
    # DuckLake cannot take the tables the pragma creates from queries: build the same layout
    # in memory over no articles, copy it, and index every article into it.
    with transaction(con):
        if not has_index(con):
            with duckdb.connect() as template:
                load_fts(template)
                names = ", ".join(f"{c} VARCHAR" for c in ("article_id", *_FIELDS))
                template.execute(f"CREATE TABLE articles ({names})")
                template.execute(_CREATE_INDEX)
                lake.copy_schema(con, template, INDEX_SCHEMA, _MACRO_PARAMETERS, _lake_macro)
        ids = [r[0] for r in con.execute("SELECT article_id FROM articles").fetchall()]
        index_articles(con, ids)


def index_articles(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]) -> None:
    """Bring these articles' index entries up to date (add them, or replace what they had).

    Call it in the transaction that wrote them. Without an index yet this does nothing:
    :func:`refresh_index` builds it from every article.
    """
    if not article_ids or not has_index(con):
        return
    load_fts(con)
    s = INDEX_SCHEMA
    ids = list(article_ids)
    old = [
        r[0]
        for r in con.execute(
            f"SELECT docid FROM {s}.docs WHERE {sql_in_keys('name')}",
            [keys_param(ids)],
        ).fetchall()
    ]
    if old:
        _drop_docs(con, old)
    tokenized = " UNION ALL ".join(
        f"""SELECT unnest({s}.tokenize(d.{field})) AS w, d.docid,
                   (SELECT fieldid FROM {s}.fields WHERE field = '{field}') AS fieldid
            FROM _index_docs AS d"""
        for field in _FIELDS
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _index_docs AS
        SELECT (SELECT coalesce(max(docid), -1) FROM {s}.docs) + row_number() OVER () AS docid,
               article_id AS name, {", ".join(_FIELDS)}
        FROM articles WHERE {sql_in_keys("article_id")}
        """,
        [keys_param(ids)],
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _index_terms AS
        WITH tokenized AS ({tokenized})
        SELECT stem(t.w, '{_STEMMER}') AS term, t.docid, t.fieldid
        FROM tokenized AS t
        WHERE t.w NOT NULL AND len(t.w) > 0
          AND t.w NOT IN (SELECT sw FROM {s}.stopwords)
        """
    )
    con.execute(
        f"""
        INSERT INTO {s}.dict (termid, term, df)
        SELECT (SELECT coalesce(max(termid), -1) FROM {s}.dict) + row_number() OVER (), term, 0
        FROM (SELECT DISTINCT term FROM _index_terms
              WHERE term NOT IN (SELECT term FROM {s}.dict) ORDER BY term)
        """
    )
    con.execute(
        f"""
        UPDATE {s}.dict SET df = dict.df + n.docs
        FROM (SELECT term, count(DISTINCT docid) AS docs FROM _index_terms GROUP BY term) AS n
        WHERE dict.term = n.term
        """
    )
    con.execute(
        f"""
        INSERT INTO {s}.terms (docid, fieldid, termid)
        SELECT t.docid, t.fieldid, d.termid
        FROM _index_terms AS t JOIN {s}.dict AS d ON d.term = t.term
        """
    )
    con.execute(
        f"""
        INSERT INTO {s}.docs (docid, name, len)
        SELECT d.docid, d.name, count(t.term)
        FROM _index_docs AS d LEFT JOIN _index_terms AS t ON t.docid = d.docid
        GROUP BY d.docid, d.name
        """
    )
    _refresh_stats(con)
    # (no try/finally: after an error the transaction is aborted and the load's rollback, or
    # the connection's end, takes the temporary tables with it)
    con.execute("DROP TABLE _index_terms")
    con.execute("DROP TABLE _index_docs")


def _drop_docs(con: duckdb.DuckDBPyConnection, docids: Sequence[int]) -> None:
    """Remove documents from the index, their terms from the document frequencies."""
    s = INDEX_SCHEMA
    con.execute(
        f"""
        UPDATE {s}.dict SET df = dict.df - n.docs
        FROM (SELECT termid, count(DISTINCT docid) AS docs FROM {s}.terms
              WHERE {sql_in_keys("docid", of="BIGINT")} GROUP BY termid) AS n
        WHERE dict.termid = n.termid
        """,
        [keys_param(docids)],
    )
    con.execute(f"DELETE FROM {s}.dict WHERE df <= 0")
    for table in ("terms", "docs"):
        con.execute(
            f"DELETE FROM {s}.{table} WHERE {sql_in_keys('docid', of='BIGINT')}",
            [keys_param(docids)],
        )


def _refresh_stats(con: duckdb.DuckDBPyConnection) -> None:
    s = INDEX_SCHEMA
    con.execute(f"DELETE FROM {s}.stats")
    con.execute(f"INSERT INTO {s}.stats SELECT count(docid), sum(len) / count(len) FROM {s}.docs")


@dataclass(frozen=True)
class SearchOptions:
    since: date | None = None  # published (else first seen) on or after this day (UTC)
    topic: str | None = None  # only articles relevant to this topic
    limit: int = 20
    all_copies: bool = False  # every copy of a story, not only its best-ranked one
    until: date | None = None  # ... on or before this day
    language: str | None = None  # detected (else declared) language
    source: str | None = None  # outlet: site name, else feed name


# AND / OR / NOT / NEAR/N, quotes, parentheses, wildcards, "=" and field scopes: the topics'
# query language (extractors/query.py), not a bag of words
_QUERY_LANGUAGE = re.compile(r'\b(?:AND|OR|NOT|NEAR/\d+)\b|["()*]|(?:^|\s)=|\b(?:title|lead|body):')
CANDIDATES = 5_000  # BM25's best articles a query-language search checks, at most


def uses_query_language(query: str) -> bool:
    """Whether ``query`` is written in the topics' query language (else: plain words)."""
    return bool(_QUERY_LANGUAGE.search(query))


def _language_matches(con: duckdb.DuckDBPyConnection, query: str) -> tuple[str, list[str]]:
    """For a query in the topics' language: the words BM25 ranks by (its positive terms) and
    the ids of the candidate articles the query matches (title, lead and body, as a topic's
    query would). Candidates: BM25's best :data:`CANDIDATES` for those words, the articles
    whose indexed words start with a ``prefix*`` term, and, for a query with no positive term
    (``NOT football``), the newest :data:`CANDIDATES`. Raises ConfigError on a syntax error."""
    from newsmon.extractors.query import compile_query, positive_terms_of
    from newsmon.extractors.query_syntax import fold

    matcher = compile_query(query, source="search")
    terms = positive_terms_of(matcher.queries["query"])
    words = " ".join(w for t in terms for w in t.words if not t.prefix)
    prefixes = [fold(t.words[-1]).lower() for t in terms if t.prefix]
    s = INDEX_SCHEMA
    rows = con.execute(
        f"""
        WITH ranked AS (
            SELECT article_id FROM (
                SELECT article_id, {s}.match_bm25(article_id, $words) AS bm25 FROM articles
            ) WHERE bm25 IS NOT NULL ORDER BY bm25 DESC LIMIT {CANDIDATES}
        ), prefixed AS (
            SELECT DISTINCT d.name AS article_id
            FROM {s}.dict w JOIN {s}.terms t USING (termid) JOIN {s}.docs d USING (docid)
            WHERE list_bool_or(list_transform(  -- (the index holds stems: "defensive" is "defens")
                $prefixes::VARCHAR[],
                p -> starts_with(w.term, p) OR (len(w.term) >= 4 AND starts_with(p, w.term))))
            LIMIT {CANDIDATES}
        ), newest AS (
            SELECT article_id FROM articles WHERE $everything
            ORDER BY coalesce(published_at, first_seen_at) DESC LIMIT {CANDIDATES}
        )
        SELECT a.article_id, coalesce(a.title, ''), coalesce(a.text, a.summary, '')
        FROM articles a
        WHERE a.article_id IN (SELECT article_id FROM ranked UNION SELECT article_id FROM prefixed
                               UNION SELECT article_id FROM newest)
        """,
        {"words": words, "prefixes": prefixes, "everything": not terms},
    ).fetchall()
    keep = [
        aid
        for aid, title, text in rows
        if matcher.matches(
            "query", matcher.scan(title + "\n" + text, title_chars=len(title), lead_words=60)
        )
    ]
    return words, keep


def search(con: duckdb.DuckDBPyConnection, query: str, options: SearchOptions) -> Table:
    """Articles matching ``query``, best BM25 score first (one row per story unless
    ``all_copies``): rank, bm25, published day, outlet, title, topic score and relevance,
    copies (articles in the story), url, article_id.

    Plain words are BM25's bag of words. A query in the topics' query language (``AND``,
    ``OR``, ``NOT``, ``NEAR/N``, quotes, parentheses, ``defen*``, ``=EU``, ``title:``) is
    ranked by BM25 on its positive terms and keeps only the articles it matches as a topic's
    query would (among BM25's best :data:`CANDIDATES`); a syntax error raises ConfigError with
    the position."""
    if not has_index(con):
        raise WarehouseError(
            "the warehouse has no search index yet: it is built by `newsmon run` and "
            "`newsmon rescore`"
        )
    load_fts(con)
    keep: list[str] | None = None
    if uses_query_language(query):
        query, keep = _language_matches(con, query)
    topic_filter = "AND t.relevant" if options.topic else ""
    found = "h.bm25 IS NOT NULL"
    if keep is not None:  # what the query matched, ranked by BM25 (0: a word BM25 lacks)
        found = "list_contains($keep::VARCHAR[], a.article_id)"
    per_story = (
        ""
        if options.all_copies
        else (
            "QUALIFY row_number() OVER (PARTITION BY coalesce(a.story_id, a.article_id) "
            "ORDER BY h.bm25 DESC, a.article_id) = 1"
        )
    )
    sql = f"""
        WITH hits AS (
            SELECT article_id, {INDEX_SCHEMA}.match_bm25(article_id, $query) AS bm25
            FROM articles
        ), topics AS (
            SELECT article_id,
                   max(score) FILTER (WHERE $topic IS NULL OR topic = $topic) AS score,
                   bool_or(relevant) FILTER (WHERE $topic IS NULL OR topic = $topic) AS relevant,
                   list(topic ORDER BY topic) FILTER (WHERE relevant) AS relevant_to
            FROM article_matches GROUP BY article_id
        )
        SELECT round(h.bm25, 3) AS bm25,
               CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE)
                   AS published,
               coalesce(a.site_name, f.name) AS outlet,
               a.title,
               round(t.score, 2) AS score,
               coalesce(t.relevant, false) AS relevant,
               coalesce(s.article_count, 1) AS copies,
               a.url,
               a.article_id
        FROM hits h
        JOIN articles a USING (article_id)
        LEFT JOIN feeds f ON f.feed_id = a.feed_id
        LEFT JOIN topics t ON t.article_id = a.article_id
        LEFT JOIN stories s ON s.story_id = a.story_id
        WHERE {found}
          AND ($since IS NULL
               OR CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE)
                  >= $since)
          AND ($until IS NULL
               OR CAST(timezone('UTC', coalesce(a.published_at, a.first_seen_at)) AS DATE)
                  <= $until)
          AND ($language IS NULL
               OR lower(coalesce(a.detected_language, a.language)) = lower($language))
          AND ($source IS NULL OR $source IN (coalesce(a.site_name, f.title, f.name),
                                              coalesce(a.site_name, f.name)))
          {topic_filter}
        {per_story}
        ORDER BY h.bm25 DESC, a.article_id
        LIMIT $limit
    """
    cur = con.execute(
        sql,
        {
            "query": query,
            "topic": options.topic,
            "since": options.since,
            "until": options.until,
            "language": options.language,
            "source": options.source,
            "limit": options.limit,
        }
        | ({} if keep is None else {"keep": keep}),
    )
    columns = [d[0] for d in cur.description or []]
    return Table(columns, [tuple(r) for r in cur.fetchall()])


__all__ = [
    "INDEX_SCHEMA",
    "SearchOptions",
    "has_index",
    "index_articles",
    "load_fts",
    "refresh_index",
    "search",
    "uses_query_language",
]
