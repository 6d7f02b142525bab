"""URL canonicalisation and content hashing, used to de-duplicate articles.

``canonical_url`` maps the many spellings of one article URL to one string:

- scheme and host lower-cased; a trailing dot on the host removed; IDN hosts encoded to punycode
  (IDNA 2003, Python's ``idna`` codec; a host it cannot encode is kept lower-cased);
- default ports (``:80`` for http, ``:443`` for https) dropped;
- the fragment dropped (``#!`` "hash-bang" fragments too: news URLs do not depend on them);
- an empty path becomes ``/``; characters outside the URL alphabet in the path are
  percent-encoded, percent escapes are upper-cased and escapes of unreserved characters decoded,
  so an IRI and its encoded form compare equal; dot segments and trailing slashes are kept;
- tracking parameters removed (the ``utm_*`` family, click ids such as ``fbclid``/``gclid``/
  ``msclkid``, mailing-list, analytics and feed-campaign tags such as ``at_medium``,
  ``traffic_source``, ``wt_mc``, ``icid``; see ``TRACKING_PARAMS``); ``ref`` is removed only when
  its value names a referral channel (``ref=rss``, ``ref=twitter``), because ``ref`` is a real
  parameter on some sites (``?ref=main`` on code hosts);
- the remaining query parameters sorted by name (stable, so repeated names keep their order),
  each kept in its original encoding; an empty query is dropped.

``www.`` is *not* stripped: ``www.example.com`` and ``example.com`` are different hosts that may
serve different things, and most sites redirect one to the other anyway. User info is kept by
``canonical_url``; entry links never carry it (``strip_userinfo`` removes ``user:password@``
before a link is stored, logged or fetched: credentials in a feed URL are for the feed only).
``canonical_url`` never raises: a string it cannot parse (or a non-http(s) URL) comes back
stripped of surrounding whitespace and otherwise unchanged, apart from the lower-cased scheme.

``content_hash`` hashes text after Unicode NFKC normalisation, case folding, removal of invisible
format characters (soft hyphens, zero-width spaces, BOMs, bidi marks) and whitespace collapsing,
so re-fetching an article whose markup changed but whose words did not yields the same hash.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from newsmon.core.addresses import strip_userinfo

__all__ = ["TRACKING_PARAMS", "canonical_url", "content_hash", "is_http_url", "strip_userinfo"]

_HTTP_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Query parameter names (compared lower-cased) that only track the visit.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # click ids
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "igsh", "epik", "rdt_cid", "scid",
        # mailing lists / marketing automation
        "mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hssc", "__hstc", "__hsfp", "hsctatracking",
        "mkt_tok", "vero_id", "vero_conv", "oly_enc_id", "oly_anon_id", "rb_clickid", "s_cid",
        "sc_cid", "et_cid", "et_rid", "ml_subscriber", "ml_subscriber_hash",
        # analytics and campaign tags used by news sites and their feeds
        "_ga", "_gl", "ocid", "cmpid", "cmp", "icid", "ito", "ncid", "sr_share", "smid",
        "at_medium", "at_campaign", "at_source", "at_content", "at_term", "at_format",
        "at_link", "at_ptr_name", "at_link_id", "at_link_origin", "at_link_type",
        "at_bbc_team", "at_campaign_type", "traffic_source", "wt_mc", "wt.mc_id", "wt.mc_ev",
        "ns_mchannel", "ns_campaign", "ns_source", "ns_linkname", "ns_fee",
        "ref_src", "ref_url", "src_trk", "share_id",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_",)
#: ``ref=<value>`` is tracking when the value names where the click came from.
_REF_CHANNELS = frozenset(
    {
        "rss", "feed", "feeds", "rssfeed", "atom", "twitter", "tw", "x", "facebook", "fb",
        "linkedin", "reddit", "hn", "hackernews", "newsletter", "email", "mail", "share",
        "social", "homepage", "hp", "home", "nav", "menu", "sidebar", "footer", "header",
        "related", "search", "google", "bing", "app", "amp", "flipboard", "upday",
    }
)  # fmt: skip

_PCT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# RFC 3986 pchar plus "/" and "%" (existing escapes are normalised separately)
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def is_http_url(url: str) -> bool:
    """True for an absolute ``http``/``https`` URL with a host (no whitespace inside)."""
    if not isinstance(url, str) or not url or any(ch.isspace() for ch in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme.lower() in _HTTP_SCHEMES and bool(host)


def _normalise_escapes(text: str) -> str:
    """Upper-case percent escapes and decode those of unreserved characters."""

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PCT_ESCAPE.sub(fix, text)


def _encode_part(text: str, safe: str) -> str:
    return _normalise_escapes(quote(text, safe=safe))


def _canonical_host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _is_tracking(name: str, value: str) -> bool:
    key = unquote(name).strip().lower()
    if key in TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES):
        return True
    return key == "ref" and unquote(value).strip().lower() in _REF_CHANNELS


def _canonical_query(query: str) -> str:
    kept: list[tuple[str, str]] = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if _is_tracking(name, value):
            continue
        kept.append((unquote(name), _encode_part(pair, _QUERY_SAFE)))
    kept.sort(key=lambda item: item[0])
    return "&".join(encoded for _, encoded in kept)


def canonical_url(url: str) -> str:
    """Return the canonical form of ``url`` (see the module docstring for the rules)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in _HTTP_SCHEMES or not hostname:
        return urlunsplit(parts._replace(scheme=scheme)) if scheme else url

    host = _canonical_host(hostname)
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{host}" if userinfo else host

    path = _encode_part(parts.path, _PATH_SAFE) or "/"
    query = _canonical_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


# invisible format characters that vary between fetches of the same text
_INVISIBLE = dict.fromkeys(
    [
        *(0x00AD, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF),
        *range(0x202A, 0x202F),  # bidi embeddings and overrides
        *range(0x2066, 0x206A),  # bidi isolates
    ]
)


def normalise_for_hash(text: str) -> str:
    """The text ``content_hash`` hashes: NFKC, case-folded, invisibles removed, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return " ".join(text.split())


def content_hash(text: str) -> str:
    """SHA-256 (64 hex digits) of ``normalise_for_hash(text)``; stable across runs and hosts."""
    return hashlib.sha256(normalise_for_hash(text).encode("utf-8")).hexdigest()
