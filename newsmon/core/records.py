"""Records the layers hand each other: what the warehouse selects for a digest and the channels
render. Plain frozen dataclasses, no behaviour beyond a property."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class DigestArticle:
    article_id: str
    title: str
    url: str
    outlet: str
    published_at: datetime | None
    first_seen_at: datetime
    score: float
    topic: str
    extract: str
    entities: tuple[str, ...]  # why it matched: entity names ...
    terms: tuple[str, ...]  # ... and query terms, strongest first
    group_keys: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class DigestStory:
    lead: DigestArticle
    others: tuple[DigestArticle, ...]  # the same story from other outlets

    @property
    def articles(self) -> tuple[DigestArticle, ...]:
        return (self.lead, *self.others)


@dataclass(frozen=True)
class FailingFeed:
    name: str
    url: str
    reason: str | None
    error_streak: int
    last_success_at: datetime | None


__all__ = ["DigestArticle", "DigestStory", "FailingFeed"]
