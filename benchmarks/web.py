"""How fast the reading room answers on a large warehouse (docs/performance.md).

Builds a warehouse of ``--articles`` synthetic articles (default 100,000; 40 % relevant, in
stories of three copies, over 50 feeds and 90 days, each with a 2 KB text, one in ten read by
the reader) with the real schema,
serves ``newsmon web``'s app with uvicorn on 127.0.0.1, and times each page over real HTTP:
``--requests`` times after three warm-up requests. Prints a table and, last, one JSON line.

    .venv/bin/python -m benchmarks.web [--articles 100000] [--requests 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from benchmarks.latency import free_port
from newsmon.warehouse.store import connect
from newsmon.web.app import WebConfig, create_app

TOPIC = "eu_nato_defence"


def build(db: Path, articles: int) -> None:
    with connect(db) as con:
        con.execute(
            """
            INSERT INTO feeds (feed_id, name, url, active, error_streak, added_at, last_status)
            SELECT 'f' || i, 'feed-' || i, 'https://news' || i || '.example.org/rss', true, 0,
                   now(), 'ok'
            FROM range(50) t(i)
            """
        )
        con.execute(
            """
            INSERT INTO articles (article_id, canonical_url, url, feed_id, title, published_at,
                                  language, site_name, summary, text, extraction_status,
                                  fetch_attempts, is_baseline, first_seen_at, updated_at,
                                  story_id, detected_language)
            SELECT printf('%016x', hash(i)), 'https://news' || (i % 50) || '.example.org/a/' || i,
                   'https://news' || (i % 50) || '.example.org/a/' || i, 'f' || (i % 50),
                   'NATO and EU defence report number ' || i,
                   TIMESTAMPTZ '2026-12-01 00:00:00+00' - INTERVAL (i * 77) SECOND,
                   'en', 'Outlet ' || (i % 50), 'Summary of report ' || i,
                   repeat('Allied ministers discussed defence procurement and readiness. ', 32),
                   'extracted', 1, false, now(), now(),
                   printf('%016x', hash(i - i % 3)), CASE WHEN i % 7 = 0 THEN 'pl' ELSE 'en' END
            FROM range(?) t(i)
            """,
            [articles],
        )
        con.execute(
            """
            INSERT INTO article_matches (article_id, topic, score, relevant, explanation,
                                         matched_at)
            SELECT article_id, ?, (hash(article_id) % 1000) / 1000.0,
                   (hash(article_id) % 1000) >= 600,
                   '{"evidence": [{"kind": "entity", "name": "nato", "label": "NATO",
                                   "contribution": 1.0}]}', now()
            FROM articles
            """,
            [TOPIC],
        )
        con.execute(
            """
            INSERT INTO stories (story_id, title, first_seen_at, last_seen_at, first_article_id,
                                 best_article_id, article_count, outlet_count, outlets,
                                 updated_at)
            SELECT story_id, min(title), min(published_at), max(published_at),
                   min(article_id), min(article_id), count(*), count(DISTINCT site_name),
                   list(DISTINCT site_name), now()
            FROM articles GROUP BY story_id
            """
        )
        # the reader has read one article in ten (the stories show which; "unread only" skips)
        con.execute(
            "INSERT INTO reads SELECT 'local', article_id, now() FROM articles "
            "WHERE hash(article_id) % 10 = 0"
        )
        con.execute("CHECKPOINT")


def timed(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    for _ in range(3):
        assert client.get(path).status_code == 200, path
    seconds = []
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get(path)
        seconds.append(time.perf_counter() - start)
        assert answer.status_code == 200, (path, answer.status_code)
    seconds.sort()
    return {
        "p50_ms": round(statistics.median(seconds) * 1000, 1),
        "p95_ms": round(seconds[max(0, int(len(seconds) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(seconds[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.duckdb"
        started = time.perf_counter()
        build(db, args.articles)
        built_s = time.perf_counter() - started
        with connect(db, read_only=True) as con:
            row = con.execute("SELECT article_id FROM articles LIMIT 1").fetchone()
        assert row is not None
        port = free_port()
        app = create_app(WebConfig(db, (TOPIC,), b"benchmark"))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        pages = {
            "stories, newest, 50": "/?per_page=50",
            "stories, best, 50": "/?order=best&per_page=50",
            "stories, topic + language, 50": f"/?topic={TOPIC}&language=pl&per_page=50",
            "stories, page 200": "/?per_page=50&page_no=200",
            "stories, unread only, 50": "/?per_page=50&unread=1",
            "article (and marking it read)": f"/articles/{row[0]}",
            "feeds": "/feeds",
            "topic Atom feed": f"/topics/{TOPIC}.atom",
        }
        results: dict[str, dict[str, float]] = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for name, path in pages.items():
                results[name] = timed(client, path, args.requests)
        server.should_exit = True
    print(f"warehouse: {args.articles} articles, built in {built_s:.1f} s")
    print(f"{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, r in results.items():
        print(f"{name:34} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['max_ms']:8.1f}")
    print(
        json.dumps(
            {
                "articles": args.articles,
                "requests": args.requests,
                "stories_50_p95_ms": results["stories, newest, 50"]["p95_ms"],
                "pages": results,
            }
        )
    )


if __name__ == "__main__":
    main()
