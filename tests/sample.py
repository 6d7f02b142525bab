"""Serving the bundled sample (config/sample/) from the loopback test server."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tests.httpserver import LoopbackHTTPServer

SAMPLE = Path(__file__).resolve().parents[1] / "config" / "sample"
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
