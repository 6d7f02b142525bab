"""The baseline set: the seed articles that ship with newsmon and load into every warehouse.

``baseline/manifest.toml`` says what each text is (title, publisher, date, language) and which
parts of it are page chrome; :func:`baseline_articles` returns them cleaned, and
:func:`baseline_records` as warehouse records (``is_baseline`` true).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from newsmon.core.errors import ConfigError
from newsmon.extractors.pipeline import ArticleRecord, filter_articles, stable_id
from newsmon.extractors.similarity import load_examples
from newsmon.extractors.topics import TopicSet
from newsmon.extractors.urls import content_hash
from newsmon.warehouse import loads
from newsmon.warehouse.search import has_index, refresh_index
from newsmon.warehouse.store import connect, keys_param, sql_in_keys
from newsmon.warehouse.stories import update_stories

BASELINE_DIR = Path(__file__).resolve().parent / "baseline"


@dataclass(frozen=True)
class BaselineArticle:
    file: str
    title: str
    publisher: str
    published: date
    language: str
    text: str  # cleaned of the chrome listed in the manifest

    @property
    def canonical_url(self) -> str:
        return f"urn:newsmon:baseline:{Path(self.file).stem.split('_', 1)[-1]}"


def baseline_articles(directory: Path = BASELINE_DIR) -> list[BaselineArticle]:
    """The baseline articles, cleaned of their chrome (see :func:`load_examples`)."""
    manifest = directory / "manifest.toml"
    articles = []
    for i, ex in enumerate(load_examples(directory)):
        try:
            articles.append(
                BaselineArticle(
                    file=ex.file,
                    title=ex.title,
                    publisher=str(ex.meta["publisher"]),
                    published=ex.meta["published"],
                    language=str(ex.meta["language"]),
                    text=ex.text,
                )
            )
        except KeyError as e:
            raise ConfigError(
                manifest, f"articles[{i}].{e.args[0]}", "is missing", "add it to the manifest"
            ) from e
    return articles


def baseline_records(directory: Path = BASELINE_DIR) -> list[ArticleRecord]:
    """The baseline as article records, ready for filtering and loading."""
    return [
        ArticleRecord(
            article_id=stable_id(a.canonical_url),
            canonical_url=a.canonical_url,
            url=a.canonical_url,
            final_url=None,
            feed_id=None,
            guid=a.file,
            title=a.title,
            author=None,
            published_at=datetime.combine(a.published, time(12, 0), tzinfo=UTC),
            fetched_at=None,
            language=a.language,
            site_name=a.publisher,
            description=None,
            summary=None,
            text=a.text,
            extraction_status="baseline",
            extraction_reason=None,
            extraction_error=None,
            fetch_attempts=0,
            http_status=None,
            content_hash=content_hash(a.text),
            is_baseline=True,
        )
        for a in baseline_articles(directory)
    ]


def ensure_baseline(db_path: Path, topics: TopicSet) -> int:
    """Load the baseline set into the warehouse if it is missing; return how many were loaded."""
    records = baseline_records()
    with connect(db_path) as con:
        present = {
            r[0]
            for r in con.execute(
                "SELECT article_id FROM articles WHERE is_baseline AND "
                + sql_in_keys("article_id"),
                [keys_param(r.article_id for r in records)],
            ).fetchall()
        }
        missing = [r for r in records if r.article_id not in present]
        if missing:
            loads.load_articles(con, filter_articles(missing, topics))
            # a new warehouse is searchable and has its stories at once (issue 8)
            update_stories(con)
            if not has_index(con):
                refresh_index(con)
    return len(missing)


__all__ = [
    "BASELINE_DIR",
    "BaselineArticle",
    "baseline_articles",
    "baseline_records",
    "ensure_baseline",
]
