"""Untrusted links are refused by default: the address policy, checked on the resolved address
when connecting (``newsmon.extractors.netguard``), without NEWSMON_ALLOW_PRIVATE_NETWORKS.

The loopback server stands in for an internal service. By default no request reaches it, by IP
or by a name that resolves to it (``localhost``), directly or through a redirect; the metadata
addresses stay refused even when private networks are allowed; the allow-list lets named hosts
or networks through. The whole flow records ``blocked_address`` for such a feed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from newsmon.core.errors import ConfigError
from newsmon.core.settings import Settings
from newsmon.extractors.fetch import FetchOptions, fetch_batch
from newsmon.extractors.netguard import AddressPolicy, parse_allowed
from newsmon.extractors.reasons import Reason
from newsmon.flows.ingest import ingest
from tests.hostile.suite import item, rss, write_feeds
from tests.httpserver import LoopbackHTTPServer


def _fetch(urls: list[str], policy: AddressPolicy) -> list[tuple[str, Reason | None]]:
    opts = FetchOptions(addresses=policy, retries=0, timeout_s=2, deadline_s=4)
    return [(r.status.value, r.reason) for r in fetch_batch(urls, opts)]


def test_internal_addresses_are_refused_by_default(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/internal", b"secret")
    http_server.redirect("/hop", http_server.url("/internal"))  # by IP
    port = http_server.port
    urls = [
        f"http://127.0.0.1:{port}/internal",
        f"http://localhost:{port}/internal",  # a name that resolves to 127.0.0.1
        f"http://[::1]:{port}/internal",
        f"http://[::ffff:127.0.0.1]:{port}/internal",
        f"http://0.0.0.0:{port}/internal",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
    ]
    assert AddressPolicy.of(Settings.from_env({})) == AddressPolicy()
    assert _fetch(urls, AddressPolicy()) == [("failed", Reason.BLOCKED_ADDRESS)] * len(urls)
    assert http_server.count("/internal") == 0

    # allowed by name: the redirect to the same server by IP is checked again, and refused
    by_name = AddressPolicy(allowed_hosts=("localhost",))
    assert _fetch([f"http://localhost:{port}/hop"], by_name) == [("failed", Reason.BLOCKED_ADDRESS)]
    assert (http_server.count("/hop"), http_server.count("/internal")) == (1, 0)


def test_the_allow_settings(http_server: LoopbackHTTPServer) -> None:
    http_server.add("/internal", b"ok")
    url = http_server.url("/internal")
    hosts, nets = parse_allowed(["127.0.0.0/8"])
    assert _fetch([url], AddressPolicy(allowed_hosts=hosts, allowed_networks=nets)) == [
        ("ok", None)
    ]
    private = AddressPolicy.of(Settings.from_env({"NEWSMON_ALLOW_PRIVATE_NETWORKS": "true"}))
    assert _fetch([url, "http://169.254.169.254/"], private) == [
        ("ok", None),
        ("failed", Reason.BLOCKED_ADDRESS),  # metadata: refused even then
    ]
    listed = Settings.from_env(
        {"NEWSMON_ALLOWED_HOSTS": " intranet.example, *.corp.example,10.0.0.0/8"}
    )
    policy = AddressPolicy.of(listed)
    assert policy.host_allowed("intranet.example") and policy.host_allowed("a.corp.example")
    assert not policy.host_allowed("corp.example.evil.org") and not policy.allow_private
    for name, value in [
        ("NEWSMON_ALLOWED_HOSTS", "intranet/evil"),
        ("NEWSMON_ALLOW_PRIVATE_NETWORKS", "maybe"),
    ]:
        with pytest.raises(ConfigError) as info:
            Settings.from_env({name: value})
        assert info.value.key == name


@pytest.mark.usefixtures("prefect_server")
def test_a_run_records_blocked_address(
    http_server: LoopbackHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSMON_ALLOW_PRIVATE_NETWORKS")
    http_server.add("/feed.xml", rss(item("x", "/x", "x")), content_type="application/rss+xml")
    feeds = write_feeds(tmp_path / "feeds.toml", {"internal": http_server.url("/feed.xml")})
    db = tmp_path / "w.duckdb"
    summary = ingest(db=str(db), feeds_file=str(feeds))
    assert [(f.status, f.reason) for f in summary.feeds] == [("failed", "blocked_address")]
    assert http_server.count("/feed.xml") == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT reason, error FROM feed_fetches").fetchall() == [
            ("blocked_address", "refused to connect to 127.0.0.1: 127.0.0.1 is a loopback address")
        ]
