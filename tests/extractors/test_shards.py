"""Shards of the feed list (extractors/shards.py) and the ingest flow's ``shard`` parameter."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from newsmon.core.errors import ConfigError
from newsmon.extractors.pipeline import stable_id
from newsmon.extractors.shards import Shard
from newsmon.flows.ingest import RunSummary, ingest
from newsmon.warehouse.store import connect
from tests.httpserver import LoopbackHTTPServer
from tests.sample import serve_sample, write_feeds_toml

IDS = [stable_id(f"https://site{i}.example/feed.xml") for i in range(3000)]


def without_query(counts: dict[str, int]) -> Counter[str]:
    out: Counter[str] = Counter()
    for path, n in counts.items():
        out[path.split("?", 1)[0]] += n
    return out


def test_parse_and_show() -> None:
    assert Shard.parse(" 2 / 3 ") == Shard(2, 3)
    assert str(Shard(2, 3)) == "2/3"
    assert Shard().whole and not Shard(1, 2).whole


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "2", "a/b", "-1/2", ""])
def test_what_is_not_a_shard_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"shard|INDEX/COUNT"):
        Shard.parse(text)


@pytest.mark.parametrize("count", [2, 3, 7])
def test_shards_are_disjoint_cover_every_feed_and_are_near_equal(count: int) -> None:
    shards = [Shard(i, count) for i in range(1, count + 1)]
    owners = [[s for s in shards if s.holds(feed_id)] for feed_id in IDS]
    assert all(len(o) == 1 for o in owners)  # each feed in exactly one shard
    sizes = [sum(o[0] == s for o in owners) for s in shards]
    assert max(sizes) - min(sizes) < 0.15 * len(IDS) / count, sizes


def test_a_feed_keeps_its_shard_as_other_feeds_come_and_go() -> None:
    # the shard is a function of the feed's own id only
    assert [Shard(1, 4).holds(i) for i in IDS[:50]] == [Shard(1, 4).holds(i) for i in IDS[:50]]
    assert all(Shard(1, 1).holds(i) for i in IDS)


def test_lock_names_let_shards_run_at_once_but_not_one_shard_twice() -> None:
    assert Shard().lock_name == "ingest"
    assert Shard(1, 2).lock_name != Shard(2, 2).lock_name
    assert Shard(1, 2).lock_name == Shard.parse("1/2").lock_name


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_two_shards_on_one_warehouse_load_what_one_whole_run_loads(
    http_server: LoopbackHTTPServer, tmp_path: Path
) -> None:
    """The sample has an article in two feeds: whichever shards its feeds fall in, it is
    fetched once; the two shards together load what a run over the whole list loads."""
    feeds = write_feeds_toml(tmp_path / "feeds.toml", serve_sample(http_server))
    whole = ingest(db=str(tmp_path / "whole.duckdb"), feeds_file=str(feeds))
    assert isinstance(whole, RunSummary)
    requests_whole = http_server.counts()
    http_server.reset_stats()

    sharded = tmp_path / "sharded.duckdb"
    parts = [ingest(db=str(sharded), feeds_file=str(feeds), shard=f"{i}/2") for i in (1, 2)]

    assert sorted(f.name for p in parts for f in p.feeds) == sorted(f.name for f in whole.feeds)
    assert sum(p.articles_new for p in parts) == whole.articles_new == 13
    # every feed and page once; the article in two feeds is fetched by the link of whichever
    # feed saw it first, which depends on the order the shards ran in (one link has utm_ tags)
    assert without_query(http_server.counts()) == without_query(requests_whole)
    with connect(tmp_path / "whole.duckdb", read_only=True) as con:
        expected = con.execute("SELECT article_id, feed_id FROM articles ORDER BY 1").fetchall()
    with connect(sharded, read_only=True) as con:
        got = con.execute("SELECT article_id, feed_id FROM articles ORDER BY 1").fetchall()
    assert [a for a, _ in got] == [a for a, _ in expected]


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_server")
def test_a_bad_shard_parameter_stops_the_run_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        ingest(db=str(tmp_path / "w.duckdb"), shard="3/2")
    assert (info.value.source, info.value.key) == ("ingest parameters", "shard")
    assert "Fix: pass INDEX/COUNT" in str(info.value)
    assert not (tmp_path / "w.duckdb").exists()
