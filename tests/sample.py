"""Serving the bundled sample (config/sample/) from the loopback test server, and the small
feeds and pages the scheduling tests make up on the spot."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from newsmon.extractors.shards import Shard
from newsmon.warehouse.polls import feed_id_for
from tests.httpserver import LoopbackHTTPServer
from tests.paths import ROOT

SAMPLE = ROOT / "config" / "sample"
FEED_TYPES = {".rss": "application/rss+xml", ".atom": "application/atom+xml", ".rdf": None}


def expected() -> dict[str, Any]:
    with (SAMPLE / "expected.toml").open("rb") as fh:
        return tomllib.load(fh)


def serve_sample(server: LoopbackHTTPServer, prefix: str = "") -> dict[str, str]:
    """Register the sample feeds (with ETags) and pages; return {feed name: feed URL}."""
    base = server.url(prefix).rstrip("/")
    feeds = {}
    for feed in sorted((SAMPLE / "feeds").iterdir()):
        body = feed.read_bytes().replace(b"{{BASE}}", base.encode())
        path = f"{prefix}/feeds/{feed.name}"
        server.add(
            path,
            body,
            content_type=FEED_TYPES[feed.suffix],
            etag=f'"{feed.stem}-v1"',
            last_modified="Mon, 16 Nov 2026 08:00:00 GMT",
        )
        feeds[feed.stem] = server.url(path)
    for page in sorted((SAMPLE / "articles").iterdir()):
        server.add(f"{prefix}/articles/{page.name}", page.read_bytes(), content_type="text/html")
    return feeds


def write_feeds_toml(path: Path, feeds: dict[str, str]) -> Path:
    lines = []
    for name, url in feeds.items():
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{url}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def rss(links: list[tuple[str, str]], ttl: int | None = None) -> str:
    """An RSS 2.0 feed of (title, link) items, the link as guid; ``ttl`` in minutes."""
    items = "".join(
        f"<item><title>{t}</title><link>{u}</link><guid>{u}</guid></item>" for t, u in links
    )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl else ""
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>{ttl_tag}{items}'
        "</channel></rss>"
    )


def news_page(title: str) -> str:
    """An article page on the topic, long enough to be extracted."""
    text = " ".join(
        [f"{title}: NATO defence ministers met in Brussels to agree more air defence."] * 8
    )
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
        f"<p>{text}</p></article></body></html>"
    )


def shard_feeds(server: LoopbackHTTPServer, per_shard: int = 2) -> dict[int, list[str]]:
    """Feed URLs on ``server`` until each of two shards has ``per_shard`` (a feed's shard
    depends on its URL, and so on the server's port)."""
    out: dict[int, list[str]] = {1: [], 2: []}
    n = 0
    while min(len(v) for v in out.values()) < per_shard:
        url = server.url(f"/feed{n}.xml")
        index = 1 if Shard(1, 2).holds(feed_id_for(url)) else 2
        if len(out[index]) < per_shard:
            out[index].append(url)
        n += 1
    return out


def ingest_sample(work: Path) -> Path:
    """A warehouse in ``work`` holding the bundled sample, ingested by the real flow (13
    articles, 8 relevant). Needs the session's Prefect server (the ``prefect_server`` fixture)."""
    import pytest

    from newsmon.flows.ingest import ingest

    db = work / "w.duckdb"
    with LoopbackHTTPServer() as http_server, pytest.MonkeyPatch.context() as env:
        feeds = write_feeds_toml(work / "feeds.toml", serve_sample(http_server))
        env.setenv("NEWSMON_WORKERS", "1")
        env.setenv("NEWSMON_ALLOW_PRIVATE_NETWORKS", "true")
        assert ingest(db=str(db), feeds_file=str(feeds)).articles_new == 13
    return db
