"""Who may use the reading room, and what protects its forms.

- **Where it listens.** 127.0.0.1 (or another loopback address) by default; any other address
  needs authentication configured (:func:`check_bind`), refused at start in one line otherwise.
- **Who you are.** With ``NEWSMON_WEB_USERS`` (a TOML file of users and scrypt hashes, made by
  ``newsmon web-user NAME``), HTTP Basic authentication; with ``NEWSMON_WEB_USER_HEADER``, the
  name a trusted reverse proxy puts in that header (the operator turns it on: a header anyone
  could send is trusted only when asked); else, on loopback only, the user ``local``.
- **Forms.** Every POST carries a token: an HMAC of the user and a random nonce that also sits
  in a SameSite=Strict cookie (:func:`csrf_token`, :func:`csrf_ok`); a cross-site request
  (``Sec-Fetch-Site: cross-site``) is refused whatever it carries.
- **Responses** carry a strict Content-Security-Policy (no script at all), ``nosniff``,
  ``frame-ancestors 'none'`` and ``no-referrer`` (:data:`HEADERS`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from newsmon.core.errors import ConfigError
from newsmon.core.signing import mac

LOCAL_USER = "local"
CSRF_COOKIE = "newsmon_csrf"
# scrypt's cost: 16 MiB and about 50 ms a check here; stored with each hash, so it can grow
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True)
class Access:
    """How users are known: hashed passwords, a trusted proxy's header, or neither (loopback)."""

    users: dict[str, str] = field(default_factory=dict)  # name -> "scrypt$n$r$p$salt$hash"
    user_header: str = ""

    @property
    def authenticated(self) -> bool:
        return bool(self.users or self.user_header)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 << 20, **_SCRYPT)
    b64 = base64.urlsafe_b64encode
    return (
        f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}$"
        f"{b64(salt).decode()}${b64(digest).decode()}"
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.urlsafe_b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 << 20,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def basic_user(authorization: str, users: dict[str, str]) -> str | None:
    """The user an ``Authorization: Basic ...`` header signs in as, or None."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, _, password = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    stored = users.get(name)
    return name if stored and verify_password(password, stored) else None


def load_users(path: Path) -> dict[str, str]:
    """The users file: ``[users]`` name = "scrypt$..." (ConfigError names the key and fix)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            path, "NEWSMON_WEB_USERS", "no such file", "create it with `newsmon web-user NAME`"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, "users", f"cannot read it ({exc})", "fix the file") from None
    users = data.get("users")
    if not isinstance(users, dict) or not users:
        raise ConfigError(path, "users", "no [users] table", "add one: newsmon web-user NAME")
    for name, value in users.items():
        if not isinstance(value, str) or not value.startswith("scrypt$") or value.count("$") != 5:
            raise ConfigError(
                path,
                f"users.{name}",
                "not a password hash",
                "make one with `newsmon web-user NAME`",
            )
    return dict(users)


def check_bind(host: str, access: Access) -> None:
    """Refuse an address beyond this machine unless users are authenticated."""
    if access.authenticated or _loopback(host):
        return
    raise ConfigError(
        "--host",
        host,
        "listening beyond this machine needs authentication",
        "set NEWSMON_WEB_USERS to a users file (newsmon web-user NAME), or NEWSMON_WEB_USER_HEADER "
        "behind a proxy that sets it, or listen on 127.0.0.1",
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def csrf_token(secret: bytes, user: str, nonce: str) -> str:
    return f"{nonce}.{mac(secret, 'csrf', user, nonce)}"


def csrf_ok(secret: bytes, user: str, cookie_nonce: str | None, token: str | None) -> bool:
    if not cookie_nonce or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, user, cookie_nonce).encode(), token.encode())


__all__ = [
    "CSRF_COOKIE",
    "HEADERS",
    "LOCAL_USER",
    "Access",
    "basic_user",
    "check_bind",
    "csrf_ok",
    "csrf_token",
    "hash_password",
    "load_users",
    "new_nonce",
    "verify_password",
]
