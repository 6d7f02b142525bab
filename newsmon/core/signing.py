"""The warehouse's signing key and the tokens it signs.

One key per warehouse signs the reading room's form tokens and the digests' one-click
unsubscribe links, so the flows (which send the links) and the web app (which honours them)
agree without sharing anything but the warehouse's folder: ``NEWSMON_WEB_SECRET`` when set,
else a random key kept beside the warehouse in ``<warehouse>.web-secret`` (mode 0600), made by
whichever process needs it first.

An unsubscribe token names one subscription and one recipient and is an HMAC of both: it lets
its holder do that one thing (no login), and a token for another subscription or address, or
one edited by hand, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

_MAC_CHARS = 32  # 128 bits of HMAC-SHA256, hex


def secret_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".web-secret")


def secret_for(db_path: Path, configured: str | None) -> bytes:
    """The key: ``configured`` (NEWSMON_WEB_SECRET), else the one kept beside the warehouse.

    Two processes making it at once both end with the same key: each writes its own to a
    private file and links it into place; the one that loses reads the winner's.
    """
    if configured:
        return configured.encode()
    path = secret_path(db_path)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32).encode()
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(value)
        try:
            os.link(draft, path)  # atomic, and never replaces a key another process made
        except FileExistsError:
            return path.read_bytes().strip()
    finally:
        draft.unlink(missing_ok=True)
    return value


def mac(secret: bytes, purpose: str, *parts: str) -> str:
    """An HMAC of ``parts`` for one purpose (a token for one use is no good for another)."""
    message = "\x1f".join((purpose, *parts)).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:_MAC_CHARS]


def unsubscribe_token(secret: bytes, subscription: str, recipient: str) -> str:
    """A URL-safe token that unsubscribes ``recipient`` from ``subscription``, and nothing else."""
    payload = json.dumps([subscription, recipient], separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{mac(secret, 'unsubscribe', subscription, recipient)}"


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[str, str] | None:
    """The (subscription, recipient) a token names, or None if it is not one of ours."""
    body, _, signature = token.partition(".")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        subscription, recipient = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        return None
    if not isinstance(subscription, str) or not isinstance(recipient, str):
        return None
    expected = mac(secret, "unsubscribe", subscription, recipient)
    same = hmac.compare_digest(expected.encode(), signature.encode())  # (str: ASCII only)
    return (subscription, recipient) if same else None


__all__ = ["mac", "read_unsubscribe_token", "secret_for", "secret_path", "unsubscribe_token"]
