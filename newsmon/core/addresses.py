"""Addresses an operator writes in settings and feeds.toml: allow-list entries and URLs that may
carry credentials. Parsed here, at the bottom, so settings can validate them before any work;
:mod:`newsmon.extractors.netguard` and :mod:`newsmon.extractors.urls` apply them."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allowed(entries: Iterable[str]) -> tuple[tuple[str, ...], tuple[IPNetwork, ...]]:
    """Split allow-list entries into (host names, networks); raise ValueError on a bad one.

    A host name is matched exactly (case-insensitive, trailing dot ignored), ``*.example.org``
    matches any name below ``example.org``; an address or CIDR network matches addresses.
    """
    hosts: list[str] = []
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = entry.removeprefix("*.")
        labels = name.split(".")
        if not all(
            label and len(label) <= 63 and all(c.isalnum() or c == "-" for c in label)
            for label in labels
        ):
            raise ValueError(f"{raw.strip()!r} is neither a host name nor an address/network")
        hosts.append(entry)
    return tuple(hosts), tuple(networks)


def strip_userinfo(url: str) -> str:
    """``url`` without a ``user:password@`` part (any scheme); unchanged when it has none.

    Works on strings ``urlsplit`` cannot parse too (a regex fallback), so it is safe on
    anything about to be stored or logged.
    """
    if "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\1", url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]*@")


__all__ = ["IPNetwork", "parse_allowed", "strip_userinfo"]
