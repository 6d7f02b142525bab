"""Untrusted links (SSRF): which addresses newsmon may connect to, checked at connect time.

Article URLs come from feeds, that is from strangers; a link (or a redirect) to
``http://169.254.169.254/`` or ``http://localhost:8080/admin`` must not make newsmon fetch from
the machine or the network it runs in. So, by default, newsmon refuses to connect to:

- loopback, private (RFC 1918, ``fc00::/7``), shared (``100.64.0.0/10``), link-local,
  multicast, reserved, unspecified and documentation addresses: anything ``ipaddress`` does
  not call global, and multicast;
- the cloud metadata addresses (``METADATA_ADDRESSES``), which stay refused even when private
  networks are allowed, unless an ``allowed`` entry names them.

The check runs on the *resolved* address, inside the connection itself: ``GuardedBackend`` is
an httpcore network backend that resolves the host name, drops every address the policy refuses
and connects to one that is left, by IP. What is checked is what is connected to, so a name that
resolves to a public address for a check and to 127.0.0.1 a moment later (DNS rebinding) cannot
get through. TLS still verifies the certificate against the host name (httpcore passes the
origin's name as SNI / ``server_hostname``). A refused connection raises
``BlockedAddressError`` (an ``httpcore.ConnectError``), which ``extractors.fetch`` records as
``Reason.BLOCKED_ADDRESS``.

``AddressPolicy(allow_private=True)`` (``NEWSMON_ALLOW_PRIVATE_NETWORKS=true``) allows all but
the metadata addresses; ``allowed`` (``NEWSMON_ALLOWED_HOSTS``) lists host names (``intranet``,
``*.corp.example``), addresses or networks (``10.1.0.0/16``) that are allowed regardless.

Behind an HTTP(S) proxy (``HTTP_PROXY``/``HTTPS_PROXY`` in the environment) the proxy resolves
and connects, so newsmon cannot see the address: it then refuses only hosts that are IP
literals or ``localhost`` (``check_literal_host``); the proxy must enforce its own policy.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = [
    "METADATA_ADDRESSES",
    "AddressPolicy",
    "BlockedAddressError",
    "GuardedBackend",
    "guarded_transport",
    "parse_allowed",
    "tls_context",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Instance-metadata endpoints (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS IPv6:
#: fd00:ec2::254; AWS ECS task metadata: 169.254.170.2; Alibaba: 100.100.100.200).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)


class BlockedAddressError(httpcore.ConnectError):
    """The host resolves only to addresses the policy refuses."""


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


def _plain(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as the IPv4 address it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is one."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be connected to (see the module docstring)."""

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()  # exact names, or "*.suffix"
    allowed_networks: tuple[IPNetwork, ...] = ()

    def host_allowed(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        for entry in self.allowed_hosts:
            if entry.startswith("*."):
                if name.endswith(entry[1:]):
                    return True
            elif name == entry:
                return True
        return False

    def refusal(self, ip: IPAddress) -> str | None:
        """Why connecting to ``ip`` is refused, or None when it is allowed."""
        ip = _plain(ip)
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return None
        kind = _kind(ip)
        if kind is None:
            return None
        if self.allow_private and ip not in METADATA_ADDRESSES:
            return None
        return kind

    def check_literal_host(self, host: str) -> str | None:
        """Without a view of the resolved address (behind a proxy): refuse IP literals and
        ``localhost`` names that the policy refuses. Returns why, or None."""
        name = host.lower().rstrip(".").strip("[]")
        if self.host_allowed(name):
            return None
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if name == "localhost" or name.endswith(".localhost"):
                ip = ipaddress.ip_address("127.0.0.1")
            else:
                return None
        why = self.refusal(ip)
        return None if why is None else f"{host} is {why}"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._policy.host_allowed(host):
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = await self._resolve(host, port, timeout)
        allowed: list[str] = []
        refused: list[str] = []
        for ip in addresses:
            why = self._policy.refusal(ip)
            if why is None:
                allowed.append(str(ip))
            else:
                refused.append(f"{ip} is {why}")
        if not allowed:
            detail = "; ".join(dict.fromkeys(refused)) or "no address"
            raise BlockedAddressError(f"refused to connect to {host}: {detail}")
        last: Exception | None = None
        for ip_text in allowed:  # by IP: what was checked is what is connected to
            try:
                return await self._inner.connect_tcp(
                    ip_text, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            return [literal]
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:  # socket.gaierror: classified as dns by extractors.fetch
            raise httpcore.ConnectError(str(exc)) from exc
        seen: dict[IPAddress, None] = {}
        for _family, _type, _proto, _canon, sockaddr in infos:
            try:
                # IPv6 sockaddr may carry a zone ("fe80::1%eth0"): drop it
                seen[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
            except ValueError:
                continue
        return list(seen)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are never connected to")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def tls_context(trust_env: bool) -> ssl.SSLContext:
    """httpx's default TLS context, built once per process and CA-bundle setting: loading the
    bundle costs about 25 ms, and every batch of fetches used to load it twice."""
    return _tls_context(trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context(trust_env: bool, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=trust_env)


def guarded_transport(
    policy: AddressPolicy, limits: httpx.Limits, trust_env: bool
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go through ``GuardedBackend(policy)``."""
    context = tls_context(trust_env)
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=trust_env)
    # httpx builds its httpcore pool without a way to pass a network backend; build the same
    # pool with ours (httpx is pinned <0.29 in pyproject.toml).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(policy),
    )
    return transport
