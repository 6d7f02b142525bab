"""From a news item appearing in a feed to the duty officer's inbox: how long, by default.

    .venv/bin/python -m benchmarks.latency [--items 24] [--window 480] [--seed 1]

Everything is real and on 127.0.0.1: ``prefect server start``; ``newsmon serve`` as a process,
with its defaults (ingest every 2 minutes) and an ``immediate`` subscription; an SMTP server
(aiosmtpd) that notes when it accepted each message; and four feeds ("outlets") that gain
``--items`` relevant items at random times over ``--window`` seconds, answering conditional GETs
with 304 as news sites do. Each item's delay runs from the moment it appears in its feed to the
moment the SMTP server accepted the first digest that holds its link. The last line is JSON:
``items``, ``delivered``, ``p50_s``, ``p95_s``, ``max_s`` (docs/performance.md has the table).
Takes about the window plus six minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "config" / "sample"
NEWSMON = [sys.executable, "-m", "newsmon.cli"]
OUTLETS = ("wire", "desk", "brief", "post")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Item:
    key: str
    outlet: str
    title: str
    url: str
    page: bytes
    appeared: float = 0.0
    delivered: float | None = None


@dataclass
class Feeds:
    """The outlets' feeds: items are published (appear) while the benchmark runs."""

    base: str = ""
    published: dict[str, list[Item]] = field(default_factory=lambda: {o: [] for o in OUTLETS})
    pages: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, item: Item) -> None:
        with self.lock:
            self.pages[f"/pages/{item.key}.html"] = item.page
            self.published[item.outlet].insert(0, item)
            item.appeared = time.time()

    def rss(self, outlet: str) -> bytes:
        with self.lock:
            items = "".join(
                f"<item><title>{html.escape(i.title)}</title><link>{i.url}</link>"
                f"<guid>{i.key}</guid></item>"
                for i in self.published[outlet][:30]
            )
        return (
            f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{outlet}</title><link>{self.base}/</link>{items}</channel></rss>"
        ).encode()


def serve_feeds(feeds: Feeds) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/feeds/"):
                body = feeds.rss(self.path.removeprefix("/feeds/").removesuffix(".xml"))
                kind = "application/rss+xml"
            else:
                with feeds.lock:
                    found = feeds.pages.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                body, kind = found, "text/html; charset=utf-8"
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    feeds.base = f"http://127.0.0.1:{server.server_address[1]}"
    return server


class Inbox:
    """Notes when the SMTP server accepted each message, and its text."""

    def __init__(self) -> None:
        self.accepted: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        self.accepted.append((time.time(), str(text)))
        return "250 OK"


def make_items(feeds: Feeds, n: int, rng: random.Random) -> list[Item]:
    """``n`` relevant items: the sample's relevant pages, each retitled and given a paragraph of
    its own, so that every item is a distinct article."""
    expected = tomllib.loads((SAMPLE / "expected.toml").read_text(encoding="utf-8"))
    pages = {}
    for slug, article in expected.get("articles", {}).items():
        raw = (SAMPLE / "articles" / f"{slug}.html").read_bytes()
        if article.get("relevant") is True and _utf8(raw):  # (other charsets are left out)
            pages[slug] = raw.decode("utf-8")
    if not pages:
        raise SystemExit("benchmarks/latency.py: no relevant page in config/sample/")
    relevant = sorted(pages)
    items = []
    for k in range(n):
        slug = relevant[k % len(relevant)]
        page = pages[slug]
        title_match = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
        title = f"{html.unescape(title_match.group(1)).strip() if title_match else slug} ({k + 1})"
        extra = (
            f"<p>Update {k + 1}: officials in Brussels said on day {rng.randint(1, 28)} that "
            f"the allies would review item {rng.randint(1000, 9999)} of the plan.</p>"
        )
        heading = f"<h1\\1>{html.escape(title)}</h1>"
        page = re.sub(r"<h1([^>]*)>.*?</h1>", heading, page, count=1, flags=re.S)
        page = page.replace("</article>", extra + "</article>", 1)
        key = f"{slug}-{k + 1}"
        outlet = OUTLETS[rng.randrange(len(OUTLETS))]
        items.append(Item(key, outlet, title, f"{feeds.base}/pages/{key}.html", page.encode()))
    return items


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def start_prefect(home: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NEWSMON_", "PREFECT_"))},
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
        "PREFECT_LOGGING_SETTINGS_PATH": str(ROOT / "config" / "prefect-logging.yml"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                return server, env
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("benchmarks/latency.py: the Prefect server did not start in 120 s")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24, help="items to publish (at least 20)")
    parser.add_argument("--window", type=float, default=480.0, help="seconds they appear over")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="newsmon-latency-") as tmp:
        work = Path(tmp)
        feeds = Feeds()
        http_server = serve_feeds(feeds)
        inbox = Inbox()
        smtp_port = free_port()
        smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        prefect, env = start_prefect(work / "prefect")
        serve: subprocess.Popen[bytes] | None = None
        try:
            feeds_file = work / "feeds.toml"
            feeds_file.write_text(
                "".join(
                    f'[[feeds]]\nname = "{o}"\nurl = "{feeds.base}/feeds/{o}.xml"\n\n'
                    for o in OUTLETS
                ),
                encoding="utf-8",
            )
            alerts = work / "alerts.toml"
            alerts.write_text(
                'version = 1\n\n[[subscriptions]]\nname = "duty"\n'
                'recipients = ["duty-officer@example.org"]\ntopics = ["eu_nato_defence"]\n'
                'min_score = 0.5\nfrequency = "immediate"\nmax_items = 50\n',
                encoding="utf-8",
            )
            db = work / "newsmon.duckdb"
            env |= {
                "NEWSMON_ALLOW_PRIVATE_NETWORKS": "true",  # the outlets are on 127.0.0.1
                "NEWSMON_SMTP_HOST": "127.0.0.1",
                "NEWSMON_SMTP_PORT": str(smtp_port),
                "NEWSMON_SMTP_SECURITY": "none",
            }
            subprocess.run([*NEWSMON, "init", "--db", str(db)], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            serve = subprocess.Popen(
                [*NEWSMON, "serve", "--db", str(db), "--feeds", str(feeds_file),
                 "--alerts", str(alerts)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            items = make_items(feeds, args.items, rng)
            times = sorted(rng.uniform(30, 30 + args.window) for _ in items)
            started = time.time()
            print(f"publishing {len(items)} items over {args.window:.0f} s ...", flush=True)
            pending = list(zip(times, items, strict=True))
            deadline = started + 30 + args.window + 360
            while time.time() < deadline:
                now = time.time()
                while pending and pending[0][0] <= now - started:
                    feeds.publish(pending.pop(0)[1])
                for at, text in inbox.accepted:
                    for item in items:
                        if item.appeared and item.delivered is None and item.url in text:
                            item.delivered = at
                if not pending and all(i.delivered is not None for i in items):
                    break
                if serve.poll() is not None:
                    raise SystemExit(f"newsmon serve exited with {serve.returncode}")
                time.sleep(1.0)
        finally:
            if serve is not None and serve.poll() is None:
                serve.terminate()
                serve.wait(30)
            prefect.terminate()
            prefect.wait(30)
            smtp.stop()
            http_server.shutdown()

    delays = [i.delivered - i.appeared for i in items if i.delivered is not None]
    print(f"{'item':<52}{'outlet':<8}{'delay s':>9}")
    for i in sorted(items, key=lambda i: i.appeared):
        delay = f"{i.delivered - i.appeared:9.0f}" if i.delivered else "   missed"
        print(f"{i.title[:50]:<52}{i.outlet:<8}{delay}")
    result = {
        "items": len(items),
        "delivered": len(delays),
        "p50_s": round(statistics.median(delays), 1) if delays else None,
        "p95_s": round(percentile(delays, 0.95), 1) if delays else None,
        "max_s": round(max(delays), 1) if delays else None,
        "digests": len(inbox.accepted),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
