"""The small, fixed set of failure reasons recorded for feeds, pages and extraction.

Every failure newsmon records carries one of these values (never free text: the detail goes in a
separate ``error`` column). ``RETRYABLE`` says which can succeed on a later attempt.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # network
    TIMEOUT = "timeout"  # connect/read timeout or the total deadline passed
    DNS = "dns"  # the host name did not resolve
    REFUSED = "refused"  # connection refused
    CONNECTION = "connection"  # reset, TLS or protocol error, truncated response
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BAD_URL = "bad_url"  # not http(s) or an existing local file; a redirect to another scheme
    BLOCKED_ADDRESS = "blocked_address"  # resolves to a loopback/private/link-local/metadata IP
    # HTTP
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    TOO_LARGE = "too_large"  # body over the size limit (declared or streamed)
    TOO_MANY_ITEMS = "too_many_items"  # a feed over the item limit: the first ones were kept
    DEFERRED = "deferred"  # the batch already held its byte budget of bodies: the next run
    # content
    NOT_A_FEED = "not_a_feed"  # parsed, but no feed and no entries (HTML page, JSON, garbage)
    NOT_HTML = "not_html"  # an article URL that is not an HTML page (PDF, image)
    EMPTY = "empty"  # page fetched but no main text could be extracted
    EXTRACT_ERROR = "extract_error"  # the extractor raised
    FILE_ERROR = "file_error"  # a local file path could not be read


RETRYABLE: frozenset[Reason] = frozenset(
    {
        Reason.TIMEOUT,
        Reason.DNS,
        Reason.REFUSED,
        Reason.CONNECTION,
        Reason.HTTP_5XX,
        Reason.DEFERRED,
    }
)

__all__ = ["RETRYABLE", "Reason"]
