"""E-mail digests: render a subscription's new stories and deliver them exactly once.

:func:`run_digest` is the whole job for one subscription: take the subscription's lock, check the
schedule, select and group the stories (:mod:`warehouse.digests`), render the subject, plain text
and HTML from the Jinja2 templates in ``config/templates/``, record the digest as ``sending``,
hand the message to the SMTP server, and mark it ``sent`` only once the server has accepted it.
When sending fails, the digest is marked ``failed`` with a reason and its items stay eligible, so
the next run sends them. ``dry_run_dir`` writes the message as an ``.eml`` file instead and
records nothing.

Why smtplib and not prefect-email's ``email_send_message``: that task builds its own MIME message,
so the ``.eml`` written by ``--dry-run`` could not be the message that is sent, and newsmon could
not set the Message-ID it records in ``digests`` for tracing a delivery. Its credentials block
is matched instead by reading the password from a Prefect Secret block
(``NEWSMON_SMTP_PASSWORD_BLOCK``) when the environment has none.

The one gap in exactly-once: if the process dies after the server accepted the message and before
``sent`` is written, the digest stays ``sending`` and its items are sent again on the next run
(at least once). Nothing is ever marked sent that the server did not accept.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from newsmon.alerts import Subscription, is_due, next_due
from newsmon.config import DEFAULT_CONFIG_DIR, Secret, Settings
from newsmon.locks import exclusive, lock_path
from warehouse import digests
from warehouse.digests import DigestStory, FailingFeed
from warehouse.store import connect

TEMPLATES_DIR = DEFAULT_CONFIG_DIR / "templates"

# why a send failed: a small fixed set (docs/alerts.md)
SMTP_UNREACHABLE = "smtp_unreachable"  # DNS, connection refused, timeout
SMTP_DISCONNECTED = "smtp_disconnected"  # the server closed the connection mid-way
SMTP_TLS = "smtp_tls"  # STARTTLS unsupported or the TLS handshake failed
SMTP_AUTH = "smtp_auth"  # login refused
SMTP_REFUSED = "smtp_refused"  # sender, every recipient or the message refused
SMTP_ERROR = "smtp_error"  # any other SMTP protocol error


class SendError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class DigestOutcome:
    subscription: str
    status: str  # sent | empty | failed | dry_run | not_due | busy
    digest_id: str | None = None
    stories: int = 0
    articles: int = 0
    reason: str | None = None
    error: str | None = None
    path: str | None = None  # the .eml file of a dry run


# --------------------------------------------------------------------------- rendering


def _environment(templates_dir: Path, zone: Any) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["localtime"] = lambda dt: dt.astimezone(zone).strftime("%-d %b %Y, %H:%M %Z")
    env.filters["safe_url"] = safe_url
    env.filters["score_colour"] = _score_colour
    return env


def safe_url(url: str) -> str:
    """The URL if it is http(s), else ``#``: a feed must not put ``javascript:`` in an e-mail."""
    return url if urlsplit(url).scheme in ("http", "https") else "#"


def _score_colour(score: float) -> str:
    return "#15803d" if score >= 0.75 else "#1e3a8a" if score >= 0.6 else "#6b7280"


def render(
    subscription: Subscription,
    stories: Sequence[DigestStory],
    *,
    more: int,
    failing_feeds: Sequence[FailingFeed],
    next_at: datetime | None,
    generated_at: datetime,
    alerts_file: str,
    templates_dir: Path = TEMPLATES_DIR,
) -> RenderedDigest:
    """Subject, plain text and HTML of a digest (``stories`` must not be empty)."""
    env = _environment(templates_dir, subscription.zone)
    context: dict[str, Any] = {
        "subscription": subscription,
        "stories": list(stories),
        "more": more,
        "failing_feeds": list(failing_feeds),
        "next_at": next_at,
        "generated_at": generated_at,
        "alerts_file": alerts_file,
    }
    subject = " ".join(env.get_template("digest.subject.j2").render(context).split())
    context["subject"] = subject
    text = env.get_template("digest.txt.j2").render(context)
    html = env.get_template("digest.html.j2").render(context)
    return RenderedDigest(subject, text, html)


def build_message(
    rendered: RenderedDigest,
    *,
    sender: str,
    recipients: Sequence[str],
    digest_id: str,
    now: datetime,
) -> EmailMessage:
    """A multipart/alternative message: plain text first, HTML preferred by mail clients."""
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now.astimezone(UTC))
    domain = parseaddr(sender)[1].rpartition("@")[2] or "newsmon.local"
    msg["Message-ID"] = make_msgid(idstring=digest_id, domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Newsmon-Digest"] = digest_id
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


# --------------------------------------------------------------------------- delivery


def send(message: EmailMessage, settings: Settings, password: Secret | None) -> None:
    """Hand ``message`` to the SMTP server of ``settings``; raise :class:`SendError` if it is not
    accepted. Errors carry the server's reply, never the password."""
    host, port = settings.smtp_host, settings.smtp_port_or_default
    timeout = settings.smtp_timeout_s
    where = f"{host}:{port}"
    try:
        client: smtplib.SMTP
        if settings.smtp_security == "ssl":
            client = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if settings.smtp_security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                client.login(settings.smtp_user, password.reveal() if password else "")
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as e:
        raise SendError(SMTP_AUTH, f"{where} refused the login: {_reply(e)}") from None
    except smtplib.SMTPNotSupportedError as e:
        raise SendError(SMTP_TLS, f"{where}: {e}") from None
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as e:
        raise SendError(SMTP_REFUSED, f"{where} refused the envelope: {_reply(e)}") from None
    except smtplib.SMTPDataError as e:
        raise SendError(SMTP_REFUSED, f"{where} refused the message: {_reply(e)}") from None
    except smtplib.SMTPServerDisconnected as e:
        raise SendError(SMTP_DISCONNECTED, f"{where} closed the connection: {e}") from None
    except smtplib.SMTPException as e:
        raise SendError(SMTP_ERROR, f"{where}: {e}") from None
    except ssl.SSLError as e:
        raise SendError(SMTP_TLS, f"{where}: TLS failed ({e.reason or e})") from None
    except OSError as e:  # includes TimeoutError and DNS failures
        raise SendError(SMTP_UNREACHABLE, f"cannot reach {where} ({e.strerror or e})") from None
    if refused:
        # accepted for some recipients: it is sent; name the others in the log
        raise _PartiallySent(", ".join(sorted(refused)))


class _PartiallySent(Exception):
    pass


def _reply(e: smtplib.SMTPException) -> str:
    code = getattr(e, "smtp_code", None)
    raw = getattr(e, "smtp_error", b"")
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or e)
    return f"{code} {text}".strip() if code else text


def resolve_password(settings: Settings) -> Secret | None:
    """The SMTP password: the environment's, else the Prefect Secret block named in settings."""
    if settings.smtp_password is not None or not settings.smtp_password_block:
        return settings.smtp_password
    from prefect.blocks.system import Secret as SecretBlock

    block: Any = SecretBlock.load(settings.smtp_password_block)  # sync in a sync context
    return Secret(str(block.get()))


@contextmanager
def subscription_lock(db_path: Path, subscription: str) -> Iterator[bool]:
    """An exclusive lock per warehouse and subscription; yields False if another holder has it."""
    with exclusive(lock_path(db_path, f"digest-{subscription}")) as held:
        yield held


def run_digest(
    db_path: Path,
    subscription: Subscription,
    settings: Settings,
    *,
    alerts_file: str,
    now: datetime | None = None,
    force: bool = False,
    dry_run_dir: Path | None = None,
    password: Secret | None = None,
    templates_dir: Path = TEMPLATES_DIR,
) -> DigestOutcome:
    """Build and deliver one subscription's digest if it is due (or ``force``)."""
    now = now or datetime.now(UTC)
    name = subscription.name
    with subscription_lock(db_path, name) as locked:
        if not locked:
            return DigestOutcome(name, "busy", error="another digest of it is running")
        digest_id = uuid.uuid4().hex[:16]
        with connect(db_path) as con:
            if not force and not is_due(subscription, digests.last_run(con, name), now):
                return DigestOutcome(name, "not_due")
            since = digests.selection_start(con, name, subscription.backfill_days, now)
            articles = digests.candidates(
                con, name, subscription.topics, subscription.min_score,
                subscription.languages, since,
            )  # fmt: skip
            stories = digests.group_stories(articles)
            if not stories:
                if dry_run_dir is None:
                    digests.record_empty(con, digest_id, name, subscription.recipients, now)
                return DigestOutcome(name, "empty", digest_id)
            shown, rest = stories[: subscription.max_items], stories[subscription.max_items :]
            rendered = render(
                subscription,
                shown,
                more=len(rest),
                failing_feeds=digests.failing_feeds(con, now),
                next_at=next_due(subscription, now),
                generated_at=now,
                alerts_file=alerts_file,
                templates_dir=templates_dir,
            )
            message = build_message(
                rendered,
                sender=settings.smtp_from,
                recipients=subscription.recipients,
                digest_id=digest_id,
                now=now,
            )
            n_stories, n_articles = len(shown), sum(len(s.articles) for s in shown)
            if dry_run_dir is not None:
                path = write_eml(message, dry_run_dir, f"{name}-{now:%Y%m%dT%H%M%S}-{digest_id}")
                return DigestOutcome(
                    name, "dry_run", digest_id, n_stories, n_articles, path=str(path)
                )
            digests.record_digest(
                con,
                digest_id=digest_id,
                subscription=name,
                recipients=subscription.recipients,
                subject=rendered.subject,
                message_id=str(message["Message-ID"]),
                shown=shown,
                not_shown=rest,
                now=now,
            )
        # the warehouse is not held open while talking to the SMTP server
        error: str | None = None
        try:
            send(message, settings, password)
        except SendError as e:
            with connect(db_path) as con:
                digests.finish_digest(con, digest_id, "failed", _now(), e.reason, e.detail)
            return DigestOutcome(name, "failed", digest_id, reason=e.reason, error=e.detail)
        except _PartiallySent as e:
            error = f"refused recipients: {e}"
        with connect(db_path) as con:
            digests.finish_digest(con, digest_id, "sent", _now(), error=error)
        return DigestOutcome(name, "sent", digest_id, n_stories, n_articles, error=error)


def _now() -> datetime:
    return datetime.now(UTC)


def write_eml(message: EmailMessage, directory: Path, stem: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.eml"
    path.write_bytes(bytes(message))
    return path


__all__ = [
    "DigestOutcome",
    "RenderedDigest",
    "SendError",
    "build_message",
    "render",
    "resolve_password",
    "run_digest",
    "safe_url",
    "send",
    "subscription_lock",
    "write_eml",
]
