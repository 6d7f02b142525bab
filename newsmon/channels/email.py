"""E-mail digests: render a subscription's new stories and hand them to an SMTP server.

A channel, a stage like the extractors: it renders the subject, plain text and HTML from the
Jinja2 templates in ``config/templates/`` and sends one message, and knows nothing of the
warehouse. The exactly-once delivery around it (lock, select, record ``sending``, send, mark
``sent``) is :func:`newsmon.flows.digest.run_digest`. When sending fails, :class:`SendError`
carries a reason from a small fixed set (docs/alerts.md).

Why smtplib and not prefect-email's ``email_send_message``: that task builds its own MIME message,
so the ``.eml`` written by ``--dry-run`` could not be the message that is sent, and newsmon could
not set the Message-ID it records in ``digests`` for tracing a delivery. Its credentials block
is matched instead by reading the password from a Prefect Secret block
(``NEWSMON_SMTP_PASSWORD_BLOCK``) when the environment has none.

"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2

from newsmon.core.alerts import Subscription
from newsmon.core.records import DigestStory, FailingFeed
from newsmon.core.settings import DEFAULT_CONFIG_DIR, Secret, Settings

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
    web_url: str = "",
    recipient: str = "",
    unsubscribe_url: str = "",
) -> RenderedDigest:
    """Subject, plain text and HTML of a digest (``stories`` must not be empty). With
    ``web_url`` (the reading room's address) each story links to its page there, where it can
    be marked relevant or not, and "N more" links to the topic's stories; with
    ``unsubscribe_url``, the footer offers ``recipient`` the link that stops this digest."""
    env = _environment(templates_dir, subscription.zone)
    context: dict[str, Any] = {
        "subscription": subscription,
        "stories": list(stories),
        "more": more,
        "failing_feeds": list(failing_feeds),
        "next_at": next_at,
        "generated_at": generated_at,
        "alerts_file": alerts_file,
        "web_url": web_url,
        "recipient": recipient,
        "unsubscribe_url": unsubscribe_url,
        "more_url": f"{web_url}/?{urlencode({'topic': subscription.topics[0], 'order': 'best'})}"
        if web_url and subscription.topics
        else "",
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
    list_name: str = "",
    unsubscribe_url: str = "",
) -> EmailMessage:
    """A multipart/alternative message: plain text first, HTML preferred by mail clients.

    ``list_name`` (the subscription) gives it a ``List-Id`` (RFC 2919) under the sender's
    domain, so mail clients can file and filter each subscription; ``unsubscribe_url`` adds
    ``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058:
    the client POSTs to the link, no login; the reading room honours it)."""
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(now.astimezone(UTC))
    domain = parseaddr(sender)[1].rpartition("@")[2] or "newsmon.local"
    msg["Message-ID"] = make_msgid(idstring=digest_id, domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    if list_name:
        msg["List-Id"] = f'"newsmon {list_name}" <{list_name}.{domain}>'
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Newsmon-Digest"] = digest_id
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


# --------------------------------------------------------------------------- delivery


# A server that never stops answering (an endless multi-line reply) kept smtplib reading, and its
# memory growing (1.7 GB in 20 s here), for as long as it liked: the socket timeout is per read.
MAX_REPLY_LINES = 1_000  # in one session; a real one has a few dozen


class _BoundedReader:
    """The socket file smtplib reads replies from, with a line budget and a deadline."""

    def __init__(self, raw: Any, deadline: float) -> None:
        self.raw, self.deadline, self.lines = raw, deadline, 0

    def readline(self, limit: int = -1) -> bytes:
        self.lines += 1
        if self.lines > MAX_REPLY_LINES or time.monotonic() > self.deadline:
            raise OSError("the server's replies never ended")  # smtplib: disconnected
        line: bytes = self.raw.readline(limit)
        return line

    def close(self) -> None:
        self.raw.close()


class _Bounded(smtplib.SMTP):
    """smtplib.SMTP whose whole session ends by a deadline and reads a bounded reply."""

    def __init__(self, host: str, port: int, timeout: float, **kw: Any) -> None:
        self._deadline = time.monotonic() + max(60.0, 4 * timeout)
        super().__init__(host, port, timeout=timeout, **kw)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            reader = _BoundedReader(self.sock.makefile("rb"), self._deadline)
            self.file = reader
        return super().getreply()


class _BoundedSSL(_Bounded, smtplib.SMTP_SSL):
    pass


def send(message: EmailMessage, settings: Settings, password: Secret | None) -> None:
    """Hand ``message`` to the SMTP server of ``settings``; raise :class:`SendError` if it is not
    accepted. Errors carry the server's reply, never the password."""
    host, port = settings.smtp_host, settings.smtp_port_or_default
    timeout = settings.smtp_timeout_s
    where = f"{host}:{port}"
    try:
        client: smtplib.SMTP
        if settings.smtp_security == "ssl":
            client = _BoundedSSL(host, port, timeout, context=ssl.create_default_context())
        else:
            client = _Bounded(host, port, timeout)
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
        raise PartiallySent(", ".join(sorted(refused)))


class PartiallySent(Exception):
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


def write_eml(message: EmailMessage, directory: Path, stem: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.eml"
    path.write_bytes(bytes(message))
    return path


__all__ = [
    "PartiallySent",
    "RenderedDigest",
    "SendError",
    "build_message",
    "render",
    "resolve_password",
    "safe_url",
    "send",
    "write_eml",
]
