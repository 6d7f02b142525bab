"""Untrusted links (SSRF) inside a run: items linking to the cloud metadata address, to IPv6
loopback, to a private network address, to 0.0.0.0, and a page on the (allowed) feed server
that redirects to the metadata address.

The suite allows only 127.0.0.1 (``NEWSMON_ALLOWED_HOSTS``), so all of these are refused when
the connection is made, after resolution and on every redirect hop: ``blocked_address``, with no
byte sent to them. They are terminal (not retried).
"""

from __future__ import annotations

from tests.hostile.suite import HostileRun, item, rss
from tests.httpserver import LoopbackHTTPServer

TARGETS = {
    "Metadata link": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "IPv6 loopback link": "http://[::1]:{port}/admin",
    "Private network link": "http://10.0.0.1/admin",
    "Unspecified address link": "http://0.0.0.0:{port}/admin",
    "Redirect to metadata": "{base}/ssrf/redirect",
}


def serve(server: LoopbackHTTPServer) -> dict[str, str]:
    server.redirect("/ssrf/redirect", "http://169.254.169.254/latest/meta-data/")
    items = "".join(
        item(t, url.format(port=server.port, base=server.base_url), t) for t, url in TARGETS.items()
    )
    server.add("/ssrf/feed.xml", rss(items), content_type="application/rss+xml")
    return {"ssrf-links": server.url("/ssrf/feed.xml")}


def test_internal_addresses_are_blocked(hostile: HostileRun) -> None:
    got = {r[1]: (r[3], r[4]) for r in hostile.articles("ssrf-links")}
    assert got == {t: ("failed", "blocked_address") for t in TARGETS}
    assert hostile.rows(
        "SELECT max(fetch_attempts) FROM articles WHERE extraction_reason = 'blocked_address'"
    ) == [(1,)]
    assert hostile.server.count("/admin") == 0
    assert hostile.server.count("/ssrf/redirect") == 1  # allowed host; the hop was refused
