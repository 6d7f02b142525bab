"""``newsmon demo``: the whole pipeline offline, over the bundled sample in ``config/sample/``.

A small HTTP server on 127.0.0.1 serves the sample feeds (with ``{{BASE}}`` replaced by its own
address, and ETags so a second poll gets 304) and the article pages; the real ingest flow runs
over them into a fresh warehouse; then an example SQL query shows what landed.

The sample server is on 127.0.0.1, which newsmon refuses to fetch from by default (untrusted
links, docs/reliability.md): the demo sets ``NEWSMON_ALLOW_PRIVATE_NETWORKS=true`` for its runs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click

from newsmon.cli.options import handle_errors, prefect_api
from newsmon.core.settings import DEFAULT_CONFIG_DIR

SAMPLE_DIR = DEFAULT_CONFIG_DIR / "sample"
CONTENT_TYPES = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".html": "text/html",
}
FEEDS = {
    "Defence Wire": "feeds/defence-wire.rss",
    "Europe Desk": "feeds/europe-desk.atom",
    "Security Brief": "feeds/security-brief.rdf",
}
EXAMPLE_QUERY = """\
SELECT round(m.score, 2) AS score, a.language AS lang, a.title,
       list(e.name ORDER BY e.count DESC)[1:3] AS top_entities
FROM articles a
JOIN article_matches m USING (article_id)
LEFT JOIN article_entities e USING (article_id)
WHERE m.topic = 'eu_nato_defence' AND m.relevant AND NOT a.is_baseline
GROUP BY ALL ORDER BY score DESC"""


class SampleHandler(BaseHTTPRequestHandler):
    """Serves files under ``root``; feeds get ``{{BASE}}`` substituted and an ETag."""

    root: Path = SAMPLE_DIR
    server_version = "newsmon-sample/1.0"

    def do_GET(self) -> None:
        rel = self.path.split("?", 1)[0].lstrip("/")
        path = (self.root / rel).resolve()
        if not path.is_file() or self.root.resolve() not in path.parents:
            self.send_error(404)
            return
        body = path.read_bytes()
        if path.suffix in (".rss", ".atom", ".rdf"):
            host, port = self.server.server_address[:2]  # type: ignore[index,str-unpack]
            body = body.replace(b"{{BASE}}", f"http://{host!s}:{port}".encode())
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the demo prints its own summary."""


@contextmanager
def serve_sample(root: Path = SAMPLE_DIR) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = type("Handler", (SampleHandler,), {"root": root})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def write_feeds_file(base: str, directory: Path) -> Path:
    lines = []
    for name, rel in FEEDS.items():
        lines += ["[[feeds]]", f'name = "{name}"', f'url = "{base}/{rel}"', ""]
    path = directory / "feeds.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@contextmanager
def _allow_private_networks() -> Iterator[None]:
    """NEWSMON_ALLOW_PRIVATE_NETWORKS=true while the demo runs (the sample is on 127.0.0.1)."""
    key = "NEWSMON_ALLOW_PRIVATE_NETWORKS"
    before = os.environ.get(key)
    os.environ[key] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def run_demo(db: Path, echo: Callable[[str], None] = print) -> None:
    from newsmon.cli.render import format_summary, render
    from newsmon.flows.ingest import ingest
    from newsmon.warehouse.store import connect, run_query

    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    with _allow_private_networks(), serve_sample() as base, tempfile.TemporaryDirectory() as tmp:
        feeds_file = write_feeds_file(base, Path(tmp))
        echo(f"Serving config/sample/ at {base}; warehouse {db}")
        echo("First run:")
        echo(format_summary(ingest(db=str(db), feeds_file=str(feeds_file))))
        echo("\nSecond run (nothing new; the feeds answer 304 Not Modified):")
        echo(format_summary(ingest(db=str(db), feeds_file=str(feeds_file))))
    with connect(db, read_only=True) as con:
        table = run_query(con, EXAMPLE_QUERY)
    echo(f'\nnewsmon sql --db {db} "{EXAMPLE_QUERY}"\n')
    echo(render(table.columns, table.rows))


@click.command()
@click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("data/demo.duckdb"),
    show_default=True,
    help="Warehouse for the demo (recreated each time).",
)
@handle_errors
def demo(db: Path) -> None:
    """Offline demo: serve the bundled sample on 127.0.0.1, ingest it, query the result."""
    with prefect_api() as prefect_server:
        prefect_server.ready()
        run_demo(db, echo=click.echo)


__all__ = ["EXAMPLE_QUERY", "demo", "run_demo", "serve_sample"]
