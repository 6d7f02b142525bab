"""Untrusted links (SSRF): which addresses newsmon may connect to, checked at connect time.

Article URLs come from feeds, that is from strangers; a link (or a redirect) to
``http://169.254.169.254/`` or ``http://localhost:8080/admin`` must not make newsmon fetch from
the machine or the network it runs in. So, by default, newsmon refuses to connect to:

- loopback, private (RFC 1918, ``fc00::/7``), shared (``100.64.0.0/10``), link-local,
  multicast, reserved, unspecified and documentation addresses: anything ``ipaddress`` does
  not call global, and multicast;
- the cloud metadata addresses (``METADATA_ADDRESSES``), which stay refused even when private
  networks are allowed, unless an ``allowed`` entry names them.

The check runs on the *resolved* address, inside the connection itself: ``GuardedResolver`` is
the aiohttp resolver ``newsmon.extractors.fetch`` connects through; it resolves the host name, drops
every address the policy refuses and returns only the others, which are what aiohttp connects
to. What is checked is what is connected to, so a name that resolves to a public address for a
check and to 127.0.0.1 a moment later (DNS rebinding) cannot get through. aiohttp connects to
an IP literal without resolving it, so ``newsmon.extractors.fetch`` checks hosts that name their
address first (``AddressPolicy.literal_refusal``), for the first request and every redirect
hop alike. TLS still verifies the certificate against the host name. A refusal is a
``BlockedAddressError`` (raised as it is: aiohttp wraps only the resolver's ``OSError``), which
``newsmon.extractors.fetch`` records as ``Reason.BLOCKED_ADDRESS``.

``AddressPolicy(allow_private=True)`` (``NEWSMON_ALLOW_PRIVATE_NETWORKS=true``) allows all but
the metadata addresses; ``allowed`` (``NEWSMON_ALLOWED_HOSTS``) lists host names (``intranet``,
``*.corp.example``), addresses or networks (``10.1.0.0/16``) that are allowed regardless.

A request sent through an HTTP(S) proxy (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` in the
environment) is resolved and connected by the proxy, so newsmon cannot see the address: it
then refuses only hosts that are IP literals (also numeric forms such as ``2130706433`` that a
proxy may read as one) or ``localhost`` (``literal_refusal``); the proxy must enforce its
own policy. Requests that ``NO_PROXY`` sends direct are guarded like any other.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

from newsmon.core.addresses import IPNetwork, parse_allowed
from newsmon.core.settings import Settings

__all__ = [
    "METADATA_ADDRESSES",
    "AddressPolicy",
    "BlockedAddressError",
    "GuardedResolver",
    "ResolveTimeoutError",
    "parse_allowed",
    "tls_context",
    "url_refusal",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Instance-metadata endpoints (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS IPv6:
#: fd00:ec2::254; AWS ECS task metadata: 169.254.170.2; Alibaba: 100.100.100.200).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)


_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")  # what inet_aton may read as an IPv4 address


class BlockedAddressError(Exception):
    """The host is, or resolves only to, addresses the policy refuses."""


class ResolveTimeoutError(Exception):
    """Resolving a host name took longer than the connect timeout."""


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

    @classmethod
    def of(cls, settings: Settings) -> AddressPolicy:
        """The policy ``settings`` describe (their allow-list was checked in ``from_env``)."""
        hosts, networks = parse_allowed(settings.allowed_hosts)
        return cls(settings.allow_private_networks, hosts, networks)

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

    def literal_refusal(self, host: str) -> str | None:
        """Why connecting to ``host`` is refused when the host itself names the address, or
        None: an IP literal (aiohttp connects to one without asking the resolver), a numeric
        form such as ``2130706433`` or ``0x7f.1`` (a proxy may read it as one, as inet_aton
        does), or a ``localhost`` name (loopback, RFC 6761). Worded as :class:`GuardedResolver`
        words its refusals. Other names are for the resolver, or, behind a proxy, the proxy."""
        name = host.lower().rstrip(".").strip("[]")
        if self.host_allowed(name):
            return None
        try:
            ip: IPAddress = ipaddress.ip_address(name)
        except ValueError:
            if name == "localhost" or name.endswith(".localhost"):
                ip = ipaddress.ip_address("127.0.0.1")
            elif _NUMERIC_HOST.fullmatch(name):
                try:
                    ip = ipaddress.IPv4Address(socket.inet_aton(name))
                except OSError:
                    return None
            else:
                return None
        why = self.refusal(ip)
        return None if why is None else f"refused to connect to {host}: {ip} is {why}"


def url_refusal(policy: AddressPolicy, url: str, timeout_s: float = 5.0) -> str | None:
    """Why posting to ``url`` is refused by ``policy``, or None: its host as a literal, else
    every address it resolves to now (for a webhook that a reading-room user, not the operator,
    gave). Unlike :class:`GuardedResolver` this checks before connecting, so a name that
    changes its answer between the check and the connection is not caught."""
    host = urlsplit(url).hostname or ""
    why = policy.literal_refusal(host)
    if why is not None or policy.host_allowed(host):
        return why
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return f"cannot resolve {host}"
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        refused = policy.refusal(ip)
        if refused is not None:
            return f"refused to connect to {host}: {ip} is {refused}"
    return None


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that returns only the addresses the policy allows.

    aiohttp connects to the addresses its resolver returns (and verifies TLS against the host
    name), so what is checked here is what is connected to. aiohttp does not resolve IP
    literals: :meth:`AddressPolicy.literal_refusal` checks those before a request is sent.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        timeout_s: float | None = None,
        trusted: Iterable[str] = (),
    ) -> None:
        self._policy = policy
        self._timeout_s = timeout_s
        self._trusted = {h.lower().rstrip(".") for h in trusted}  # the configured proxies

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except TimeoutError as exc:
            raise ResolveTimeoutError(f"resolving {host} timed out") from exc
        check = not (self._policy.host_allowed(host) or host.lower().rstrip(".") in self._trusted)
        results: list[ResolveResult] = []
        refused: list[str] = []
        for fam, _type, proto, _canon, sockaddr in infos:
            address = str(sockaddr[0])
            try:
                # IPv6 sockaddr may carry a zone ("fe80::1%eth0"): drop it for the check
                ip = ipaddress.ip_address(address.split("%", 1)[0])
            except ValueError:
                continue
            why = self._policy.refusal(ip) if check else None
            if why is not None:
                refused.append(f"{ip} is {why}")
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            detail = "; ".join(dict.fromkeys(refused)) or "no address"
            raise BlockedAddressError(f"refused to connect to {host}: {detail}")
        return results

    async def close(self) -> None:
        """Nothing to release."""


def tls_context(trust_env: bool) -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR with
    ``trust_env``), built once per process and CA-bundle setting: loading the
    bundle costs about 25 ms, and every batch of fetches used to load it twice."""
    return _tls_context(trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context(trust_env: bool, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=trust_env)
