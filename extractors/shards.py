"""Shards of the feed list, so that several ingest processes (Prefect workers on a work pool)
poll disjoint sets of feeds.

A feed belongs to shard ``(id mod count) + 1`` of ``count``, where ``id`` is its feed id (the
stable hash of its URL, :func:`newsmon.extractors.pipeline.stable_id`): every process computes the
same split from the same feeds file with no coordination, a feed stays in its shard as other feeds
come and go, and the shards are near equal in size (the hash is uniform).

An article linked from feeds of two shards is fetched by the shard of the feed that saw it first
(``newsmon.warehouse.loads.pending_candidates``): once, unless the two shards record their sightings
within the same moment, each before the other's commit; then both fetch it and the second load
updates the same row (the warehouse keys articles by URL), so it is still stored once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NOTATION = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``, counted from 1 ("2/3" is the second of three)."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(
                f"shard {self.index}/{self.count}: the index must be between 1 and the count"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> ``Shard(2, 3)``; raises ValueError for anything else."""
        match = _NOTATION.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a shard: write INDEX/COUNT, for example 1/2")
        return cls(int(match[1]), int(match[2]))

    @property
    def whole(self) -> bool:
        """Whether this is the whole feed list (1/1)."""
        return self.count == 1

    def holds(self, feed_id: str) -> bool:
        """Whether the feed with this id (hexadecimal, as ``stable_id`` makes them) is in it."""
        return self.whole or int(feed_id, 16) % self.count == self.index - 1

    @property
    def lock_name(self) -> str:
        """The name of the ingest lock: shards of one warehouse run at once, a shard does not
        run twice at once."""
        return "ingest" if self.whole else f"ingest-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


__all__ = ["Shard"]
