"""Adding a feed from the reading room's Feeds page: by the feed's URL or a site's home page.

The page's form does what ``newsmon feeds add URL`` does: only an http(s) URL; fetched once
through the same fetch path (address policy, size limits, timeouts) by
:func:`newsmon.extractors.discover.find_feed`, which follows a home page's
``<link rel="alternate">`` to its feed; appended to feeds.toml by
:func:`newsmon.feedlist.add_feeds` (comments and order kept, validated, replaced atomically).
The next ingest polls it. A failure is one sentence for the page, and the file is untouched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from newsmon.core.errors import ConfigError
from newsmon.core.settings import Settings


@dataclass(frozen=True)
class Added:
    message: str = ""  # what was added, for the page
    error: str = ""  # why nothing was


def add(feeds_path: Path, url: str, name: str, settings: Settings, lock: threading.Lock) -> Added:
    from newsmon.extractors.discover import find_feed
    from newsmon.extractors.fetch import FetchOptions
    from newsmon.extractors.urls import is_http_url
    from newsmon.feedlist import add_feeds

    if not is_http_url(url):
        return Added(error="Give the http(s) address of a feed, or of a site's home page.")
    found = find_feed(url, FetchOptions.of(settings), settings.max_feed_items)
    if not found.ok:
        return Added(error=f"Not added: {found.message}.")
    feed = found.as_feed(name)
    try:
        with lock:
            result = add_feeds(feeds_path, [feed])
    except (ConfigError, OSError) as exc:
        return Added(error=f"Not added: {exc}")
    if result.skipped:
        skipped, why = result.skipped[0]
        return Added(error=f"Not added: {skipped.name!r} {why} in {feeds_path.name}.")
    where = f" (found on {found.page_url})" if found.discovered else ""
    return Added(f"Added {feed.name!r}: {feed.url}{where}. The next ingest polls it.")


__all__ = ["Added", "add"]
