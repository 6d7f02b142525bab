"""The script a user would write instead of newsmon, for comparison: one article at a time.

For each feed ``feedparser.parse(url)``; for each entry ``trafilatura.fetch_url`` and
``trafilatura.extract``; one ``INSERT`` per row into DuckDB. No concurrency, no conditional
requests, no filtering. (trafilatura refuses private addresses by default, as newsmon does: the
corpus is served on 127.0.0.1, so its SSRF protection is turned off here.) Prints one JSON line:
articles, and seconds for the loop (imports not counted).

    python -m benchmarks.naive --db naive.duckdb URL [URL ...]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import duckdb
import feedparser
import trafilatura
from trafilatura.settings import use_config


def naive_ingest(feed_urls: list[str], db: str) -> int:
    """The naive loop; returns the number of rows inserted."""
    con = duckdb.connect(db)
    con.execute(
        "CREATE TABLE IF NOT EXISTS articles (url TEXT, title TEXT, author TEXT, date TEXT, "
        "text TEXT)"
    )
    config = use_config()
    config.set("DEFAULT", "SSRF_PROTECTION", "off")  # the corpus is served on 127.0.0.1
    rows = 0
    for url in feed_urls:
        feed = feedparser.parse(url)
        for entry in feed.entries:
            html = trafilatura.fetch_url(entry.link, config=config)
            if html is None:
                continue
            doc = trafilatura.extract(
                html, url=entry.link, output_format="json", with_metadata=True
            )
            if doc is None:
                continue
            data = json.loads(doc)
            con.execute(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?)",
                [entry.link, data.get("title"), data.get("author"), data.get("date"), data["text"]],
            )
            rows += 1
    con.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    rows = naive_ingest(args.urls, args.db)
    seconds = time.perf_counter() - started
    print(json.dumps({"articles": rows, "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
