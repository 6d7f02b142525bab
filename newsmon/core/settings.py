"""Configuration: ``NEWSMON_*`` environment variables and ``config/feeds.toml``, validated once.

Everything is read and checked before any work starts; a problem raises
:class:`newsmon.core.errors.ConfigError` naming the file (or variable), the key, the bad value and
the fix. ``example.env`` lists every variable with its default.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from newsmon.core.addresses import parse_allowed, strip_userinfo
from newsmon.core.errors import ConfigError
from newsmon.core.paths import DEFAULT_CONFIG_DIR

DEFAULT_DB = Path("data/newsmon.duckdb")
ENV = "environment"

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Runtime settings. Build with :meth:`from_env`; every field has a ``NEWSMON_*`` variable."""

    db_path: Path = DEFAULT_DB  # NEWSMON_DB
    feeds_path: Path = DEFAULT_CONFIG_DIR / "feeds.toml"  # NEWSMON_FEEDS
    topics_path: Path = DEFAULT_CONFIG_DIR / "topics.toml"  # NEWSMON_TOPICS
    http_timeout_s: float = 10.0  # NEWSMON_HTTP_TIMEOUT: connect/read timeout
    http_deadline_s: float = 30.0  # NEWSMON_HTTP_DEADLINE: total time for one request
    http_max_bytes: int = 10_000_000  # NEWSMON_HTTP_MAX_BYTES: largest body accepted
    # bodies one batch may hold at once; past it a page waits for the next run (memory bound)
    http_batch_max_bytes: int = 200_000_000  # NEWSMON_HTTP_BATCH_MAX_BYTES
    http_concurrency: int = 32  # NEWSMON_HTTP_CONCURRENCY: requests in flight in total
    http_per_host: int = 4  # NEWSMON_HTTP_PER_HOST: requests in flight per host
    http_retries: int = 2  # NEWSMON_HTTP_RETRIES: extra attempts for transient failures
    user_agent: str = "newsmon/0.1 (EU-NATO defence news monitor)"  # NEWSMON_USER_AGENT
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))  # NEWSMON_WORKERS
    batch_size: int = 200  # NEWSMON_BATCH_SIZE: articles fetched/extracted/loaded per batch
    # where the fetch-extract-filter batches run (flows/batches.py, docs/scaling.md)
    task_runner: str = "local"  # NEWSMON_TASK_RUNNER: local | dask
    dask_address: str = ""  # NEWSMON_DASK_ADDRESS: a Dask scheduler; empty: start a local cluster
    max_article_attempts: int = 3  # NEWSMON_MAX_ARTICLE_ATTEMPTS: retries of a failing page
    ingest_lock_wait_s: float = 0.0  # NEWSMON_INGEST_LOCK_WAIT: wait for a running ingest
    # adaptive polling (extractors/schedule.py), in seconds
    poll_min_interval_s: float = 120.0  # NEWSMON_POLL_MIN_INTERVAL: the floor
    poll_max_interval_s: float = 21_600.0  # NEWSMON_POLL_MAX_INTERVAL: the ceiling
    poll_initial_interval_s: float = 900.0  # NEWSMON_POLL_INITIAL_INTERVAL: a new feed
    # while an `immediate` subscription exists, no feed waits longer than this (serve)
    immediate_poll_interval_s: float = 120.0  # NEWSMON_IMMEDIATE_POLL_INTERVAL
    story_window_days: int = 7  # NEWSMON_STORY_WINDOW_DAYS: copies this close join one story
    # limits on what strangers can make newsmon do
    http_max_redirects: int = 5  # NEWSMON_HTTP_MAX_REDIRECTS: redirect hops followed
    max_feed_items: int = 1_000  # NEWSMON_MAX_FEED_ITEMS: entries read from one feed, per poll
    max_text_chars: int = 500_000  # NEWSMON_MAX_TEXT_CHARS: article text kept, in characters
    # untrusted links (SSRF): see extractors/netguard.py
    allow_private_networks: bool = False  # NEWSMON_ALLOW_PRIVATE_NETWORKS
    allowed_hosts: tuple[str, ...] = ()  # NEWSMON_ALLOWED_HOSTS: names, *.suffix, IPs, CIDRs
    # email digests (docs/alerts.md)
    alerts_path: Path = DEFAULT_CONFIG_DIR / "alerts.toml"  # NEWSMON_ALERTS
    # the digest's Jinja2 templates: NEWSMON_CONFIG_DIR/templates when that folder exists
    templates_dir: Path = DEFAULT_CONFIG_DIR / "templates"
    smtp_host: str = "localhost"  # NEWSMON_SMTP_HOST
    smtp_port: int = 0  # NEWSMON_SMTP_PORT: 0 means by security: 25, 587 (starttls), 465 (ssl)
    smtp_security: str = "starttls"  # NEWSMON_SMTP_SECURITY: none | starttls | ssl
    smtp_user: str = ""  # NEWSMON_SMTP_USER: empty means no login
    smtp_from: str = "newsmon <newsmon@localhost>"  # NEWSMON_SMTP_FROM
    smtp_timeout_s: float = 30.0  # NEWSMON_SMTP_TIMEOUT
    smtp_password_block: str = ""  # NEWSMON_SMTP_PASSWORD_BLOCK: a Prefect Secret block's name
    # the reading room (newsmon web, docs/web.md): who may use it beyond this machine
    web_users_path: Path | None = None  # NEWSMON_WEB_USERS: a TOML file of users and hashes
    web_user_header: str = ""  # NEWSMON_WEB_USER_HEADER: set by a trusted proxy (opt-in)
    web_url: str = ""  # NEWSMON_WEB_URL: the reading room's address, for the digests' links
    # secrets: never printed (repr shows ***), never logged
    smtp_password: Secret | None = None  # NEWSMON_SMTP_PASSWORD
    web_secret: Secret | None = None  # NEWSMON_WEB_SECRET: signs forms; else a file by the db

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        config_dir = _path(env, "NEWSMON_CONFIG_DIR", DEFAULT_CONFIG_DIR)
        base = cls()
        return cls(
            db_path=_path(env, "NEWSMON_DB", base.db_path),
            feeds_path=_path(env, "NEWSMON_FEEDS", config_dir / "feeds.toml"),
            topics_path=_path(env, "NEWSMON_TOPICS", config_dir / "topics.toml"),
            http_timeout_s=_number(env, "NEWSMON_HTTP_TIMEOUT", base.http_timeout_s, float),
            http_deadline_s=_number(env, "NEWSMON_HTTP_DEADLINE", base.http_deadline_s, float),
            http_max_bytes=_number(env, "NEWSMON_HTTP_MAX_BYTES", base.http_max_bytes, int),
            http_batch_max_bytes=_number(
                env, "NEWSMON_HTTP_BATCH_MAX_BYTES", base.http_batch_max_bytes, int
            ),
            http_concurrency=_number(env, "NEWSMON_HTTP_CONCURRENCY", base.http_concurrency, int),
            http_per_host=_number(env, "NEWSMON_HTTP_PER_HOST", base.http_per_host, int),
            http_retries=_number(env, "NEWSMON_HTTP_RETRIES", base.http_retries, int, minimum=0),
            user_agent=env.get("NEWSMON_USER_AGENT", "").strip() or base.user_agent,
            workers=_number(env, "NEWSMON_WORKERS", base.workers, int),
            batch_size=_number(env, "NEWSMON_BATCH_SIZE", base.batch_size, int),
            task_runner=_choice(env, "NEWSMON_TASK_RUNNER", base.task_runner, TASK_RUNNERS),
            dask_address=_dask_address(env),
            max_article_attempts=_number(
                env, "NEWSMON_MAX_ARTICLE_ATTEMPTS", base.max_article_attempts, int
            ),
            story_window_days=_number(
                env, "NEWSMON_STORY_WINDOW_DAYS", base.story_window_days, int
            ),
            http_max_redirects=_number(
                env, "NEWSMON_HTTP_MAX_REDIRECTS", base.http_max_redirects, int, minimum=0
            ),
            max_feed_items=_number(env, "NEWSMON_MAX_FEED_ITEMS", base.max_feed_items, int),
            max_text_chars=_number(env, "NEWSMON_MAX_TEXT_CHARS", base.max_text_chars, int),
            allow_private_networks=_flag(
                env, "NEWSMON_ALLOW_PRIVATE_NETWORKS", base.allow_private_networks
            ),
            allowed_hosts=_allowed_hosts(env, "NEWSMON_ALLOWED_HOSTS"),
            alerts_path=_path(env, "NEWSMON_ALERTS", config_dir / "alerts.toml"),
            templates_dir=(
                config_dir / "templates"
                if (config_dir / "templates").is_dir()
                else base.templates_dir
            ),
            smtp_host=env.get("NEWSMON_SMTP_HOST", "").strip() or base.smtp_host,
            smtp_port=_number(env, "NEWSMON_SMTP_PORT", base.smtp_port, int, minimum=0),
            smtp_security=_choice(env, "NEWSMON_SMTP_SECURITY", base.smtp_security, SMTP_SECURITY),
            smtp_user=env.get("NEWSMON_SMTP_USER", "").strip(),
            smtp_from=env.get("NEWSMON_SMTP_FROM", "").strip() or base.smtp_from,
            smtp_timeout_s=_number(env, "NEWSMON_SMTP_TIMEOUT", base.smtp_timeout_s, float),
            smtp_password_block=env.get("NEWSMON_SMTP_PASSWORD_BLOCK", "").strip(),
            ingest_lock_wait_s=_number(
                env, "NEWSMON_INGEST_LOCK_WAIT", base.ingest_lock_wait_s, float, minimum=0
            ),
            poll_min_interval_s=_number(
                env, "NEWSMON_POLL_MIN_INTERVAL", base.poll_min_interval_s, float
            ),
            poll_max_interval_s=_number(
                env, "NEWSMON_POLL_MAX_INTERVAL", base.poll_max_interval_s, float
            ),
            poll_initial_interval_s=_number(
                env, "NEWSMON_POLL_INITIAL_INTERVAL", base.poll_initial_interval_s, float
            ),
            immediate_poll_interval_s=_number(
                env, "NEWSMON_IMMEDIATE_POLL_INTERVAL", base.immediate_poll_interval_s, float
            ),
            web_users_path=(
                _path(env, "NEWSMON_WEB_USERS", Path()) if env.get("NEWSMON_WEB_USERS") else None
            ),
            web_user_header=env.get("NEWSMON_WEB_USER_HEADER", "").strip(),
            web_url=_web_url(env, "NEWSMON_WEB_URL"),
            smtp_password=Secret.from_env(env, "NEWSMON_SMTP_PASSWORD"),
            web_secret=Secret.from_env(env, "NEWSMON_WEB_SECRET"),
        )

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or {"none": 25, "starttls": 587, "ssl": 465}[self.smtp_security]

    @property
    def local_workers(self) -> int:
        """Extraction processes on this machine: ``workers``, or one (no pool) when the batches
        go to Dask, whose workers extract in their own processes."""
        return self.workers if self.task_runner == "local" else 1


class Secret:
    """A credential read from the environment: ``repr``/``str`` show ``***``, never the value.

    Call :meth:`reveal` at the one place that needs the value (e.g. the SMTP login).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def from_env(cls, env: Mapping[str, str], name: str) -> Secret | None:
        value = env.get(name, "")
        return cls(value) if value else None

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(
        ENV,
        name,
        f"must be true or false, got {raw!r}",
        f"set {name}=true, {name}=false or unset it",
    )


def _allowed_hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    entries = tuple(e.strip() for e in env.get(name, "").split(",") if e.strip())
    try:
        parse_allowed(entries)
    except ValueError as exc:
        raise ConfigError(
            ENV,
            name,
            str(exc),
            f"list host names, *.domains, addresses or CIDR networks, comma-separated: "
            f"{name}=intranet.example,10.1.0.0/16",
        ) from None
    return entries


SMTP_SECURITY = ("none", "starttls", "ssl")
TASK_RUNNERS = ("local", "dask")
_DASK_ADDRESS = re.compile(r"^(?:(?:tcp|tls|inproc|ucx|ws|wss)://)?[^\s/:]+(?::\d{1,5})?/?$")


def _dask_address(env: Mapping[str, str]) -> str:
    """NEWSMON_DASK_ADDRESS: a scheduler address, and only with NEWSMON_TASK_RUNNER=dask (set
    alone it would be ignored, and the run would not go where its operator thinks)."""
    name = "NEWSMON_DASK_ADDRESS"
    raw = env.get(name, "").strip()
    if not raw:
        return ""
    if not _DASK_ADDRESS.match(raw):
        raise ConfigError(
            ENV,
            name,
            f"is not a Dask scheduler address, got {raw!r}",
            f"set {name}=tcp://HOST:8786 (what `dask scheduler` prints), or unset it",
        )
    if env.get("NEWSMON_TASK_RUNNER", "").strip().lower() != "dask":
        raise ConfigError(
            ENV,
            name,
            "is set but NEWSMON_TASK_RUNNER is not dask, so it would be ignored",
            "set NEWSMON_TASK_RUNNER=dask to use the cluster, or unset " + name,
        )
    return raw


def _choice(env: Mapping[str, str], name: str, default: str, allowed: Sequence[str]) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise ConfigError(
            ENV,
            name,
            f"must be one of {', '.join(allowed)}, got {raw!r}",
            f"set {name}={default} or unset it for the default",
        )
    return raw


def _web_url(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip().rstrip("/")
    parts = urlsplit(value)
    if value and (parts.scheme not in ("http", "https") or not parts.hostname or parts.query):
        raise ConfigError(
            ENV,
            name,
            f"{value!r} is not the http(s) address of the reading room",
            f"set {name}=https://newsmon.example.org (where `newsmon web` answers)",
        )
    return value


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    value = env.get(name, "").strip()
    return Path(value).expanduser() if value else default


# Upper bounds: a value past them is a typo or an attack, and each made something overflow or
# run away (timedelta(seconds=1e300), 100,000 worker processes, a 10^30-article batch; issue 21).
_MAXIMA: dict[str, float] = {
    "NEWSMON_HTTP_TIMEOUT": 3600,
    "NEWSMON_HTTP_DEADLINE": 3600,
    "NEWSMON_HTTP_MAX_BYTES": 1_000_000_000,
    "NEWSMON_HTTP_BATCH_MAX_BYTES": 100_000_000_000,
    "NEWSMON_HTTP_CONCURRENCY": 10_000,
    "NEWSMON_HTTP_PER_HOST": 1_000,
    "NEWSMON_HTTP_RETRIES": 10,
    "NEWSMON_HTTP_MAX_REDIRECTS": 50,
    "NEWSMON_WORKERS": 256,
    "NEWSMON_BATCH_SIZE": 100_000,
    "NEWSMON_MAX_ARTICLE_ATTEMPTS": 1_000,
    "NEWSMON_STORY_WINDOW_DAYS": 3_650,
    "NEWSMON_MAX_FEED_ITEMS": 1_000_000,
    "NEWSMON_MAX_TEXT_CHARS": 100_000_000,
    "NEWSMON_SMTP_PORT": 65_535,
    "NEWSMON_SMTP_TIMEOUT": 3600,
    "NEWSMON_INGEST_LOCK_WAIT": 86_400,
    "NEWSMON_POLL_MIN_INTERVAL": 30 * 86_400,
    "NEWSMON_POLL_MAX_INTERVAL": 30 * 86_400,
    "NEWSMON_POLL_INITIAL_INTERVAL": 30 * 86_400,
    "NEWSMON_IMMEDIATE_POLL_INTERVAL": 86_400,
}


def _number(
    env: Mapping[str, str],
    name: str,
    default: T,
    kind: Callable[[str], T],
    minimum: float | None = None,  # None: must be > 0
) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    strict = minimum is None
    minimum = 0 if minimum is None else minimum
    maximum = _MAXIMA.get(name, math.inf)
    if (
        value is None
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
        or value > maximum
        or (strict and value == 0)
    ):
        what = "a whole number" if kind is int else "a number"
        bound = "greater than 0" if strict else f"at least {minimum:g}"
        bound += "" if math.isinf(maximum) else f" and at most {maximum:.0f}"
        raise ConfigError(
            ENV,
            name,
            f"must be {what} {bound}, got {raw!r}",
            f"set {name}={default} or unset it for the default",
        )
    return value


# --- feeds.toml ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedConfig:
    """One ``[[feeds]]`` entry."""

    name: str
    url: str  # http(s) URL, file:// URL or a local path (resolved against the file's folder)
    tags: tuple[str, ...] = ()
    language: str | None = None
    poll_interval_minutes: int | None = None


_FEED_KEYS = {"name", "url", "tags", "language", "poll_interval_minutes"}


def load_feeds(path: Path) -> list[FeedConfig]:
    """Read and validate a feeds file; raise ConfigError on the first problem."""
    data = read_toml(path, '[[feeds]]\nname = "NATO news"\nurl = "https://www.nato.int/..."')
    unknown = set(data) - {"feeds"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(path, key, "unknown top-level key", "use only [[feeds]] tables")
    entries = data.get("feeds")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            path, "feeds", "no [[feeds]] tables", "add at least one [[feeds]] with name and url"
        )
    feeds: list[FeedConfig] = []
    seen_names: dict[str, int] = {}
    seen_urls: dict[str, int] = {}
    for i, entry in enumerate(entries):
        key = f"feeds[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, key, "is not a table", "write it as a [[feeds]] table")
        feed = _feed_entry(path, key, entry)
        if feed.name in seen_names:
            raise ConfigError(
                path,
                f"{key}.name",
                f"duplicate name {feed.name!r} (also feeds[{seen_names[feed.name]}])",
                "give every feed a unique name",
            )
        # the warehouse keys feeds by their URL without credentials: compare them that way
        bare = strip_userinfo(feed.url)
        if bare in seen_urls:
            raise ConfigError(
                path,
                f"{key}.url",
                f"duplicate url {bare!r} (also feeds[{seen_urls[bare]}])",
                "list each feed once",
            )
        seen_names[feed.name] = i
        seen_urls[bare] = i
        feeds.append(feed)
    return feeds


def _feed_entry(path: Path, key: str, entry: dict[str, Any]) -> FeedConfig:
    unknown = set(entry) - _FEED_KEYS
    if unknown:
        bad = sorted(unknown)[0]
        raise ConfigError(
            path, f"{key}.{bad}", "unknown key", f"use only: {', '.join(sorted(_FEED_KEYS))}"
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(path, f"{key}.name", "missing or empty", 'add name = "Outlet: section"')
    url = entry.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            path, f"{key}.url", "missing or empty", 'add url = "https://example.org/rss"'
        )
    url = _feed_url(path, f"{key}.url", url.strip())
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(
            path, f"{key}.tags", f"must be a list of strings, got {tags!r}", 'tags = ["nato"]'
        )
    language = entry.get("language")
    if language is not None and (
        not isinstance(language, str) or not 2 <= len(language) <= 8 or not language[:2].isalpha()
    ):
        raise ConfigError(
            path, f"{key}.language", f"must be a language code, got {language!r}", 'language = "en"'
        )
    interval = entry.get("poll_interval_minutes")
    if interval is not None and (
        not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 10_080
    ):
        raise ConfigError(
            path,
            f"{key}.poll_interval_minutes",
            f"must be a whole number of minutes from 1 to 10080, got {interval!r}",
            "poll_interval_minutes = 30",
        )
    return FeedConfig(
        name=name.strip(),
        url=url,
        tags=tuple(tags),
        language=language.lower() if isinstance(language, str) else None,
        poll_interval_minutes=interval,
    )


def _feed_url(path: Path, key: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise ConfigError(path, key, f"{url!r} has no host", "write a full URL")
        return url
    if parts.scheme == "file":
        return url
    if parts.scheme and len(parts.scheme) > 1:
        raise ConfigError(
            path,
            key,
            f"unsupported scheme {parts.scheme!r} in {url!r}",
            "use an http(s) URL or a local file path",
        )
    local = Path(url).expanduser()
    if not local.is_absolute():
        local = (path.parent / local).resolve()
    return str(local)


def read_toml(path: Path, example: str) -> dict[str, Any]:
    """Read a TOML file, turning a missing file or a syntax error into a ConfigError."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            path, "", "file not found", f"create it (for example:\n{example}) or point to another"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML ({exc})", "correct the syntax there") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot be read ({exc.strerror})", "check the path") from None


__all__ = ["DEFAULT_CONFIG_DIR", "FeedConfig", "Secret", "Settings", "load_feeds", "read_toml"]
