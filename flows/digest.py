"""The ``digest`` Prefect flow: e-mail each subscription that is due (or one, now).

One coarse task per subscription, :func:`run_digest`: take the subscription's lock, check the
schedule, select and group the stories (:mod:`newsmon.warehouse.digests`), render and send them
(:mod:`newsmon.channels.email`), recording the digest as ``sending`` before the hand-over and
``sent`` only once the server has accepted it; ``dry_run_dir`` writes the message as an ``.eml``
file instead and records nothing. The alerts and topics files are validated before any work; a
failed delivery is logged, recorded in ``digests`` and retried on the next run, and does not stop
the others.

The one gap in exactly-once: if the process dies after the server accepted the message and before
``sent`` is written, the digest stays ``sending`` and its items are sent again on the next run
(at least once). Nothing is ever marked sent that the server did not accept.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from newsmon.channels import webhook
from newsmon.channels.email import (
    PartiallySent,
    SendError,
    build_message,
    render,
    resolve_password,
    send,
    write_eml,
)
from newsmon.core.alerts import Subscription, is_due, load_alerts, next_due
from newsmon.core.locks import exclusive, lock_path
from newsmon.core.settings import Secret, Settings
from newsmon.extractors.topics import load_topics
from newsmon.warehouse import digests
from newsmon.warehouse.store import connect


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
    templates_dir: Path | None = None,
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
                templates_dir=templates_dir or settings.templates_dir,
                web_url=settings.web_url,
            )
            message = build_message(
                rendered,
                sender=settings.smtp_from,
                recipients=subscription.recipients,
                digest_id=digest_id,
                now=now,
            )
            # a webhook's body (None: the e-mail goes, as built above)
            body = (
                None
                if subscription.channel == "email"
                else webhook.payload(subscription.channel, name, shown, len(rest), now)
            )
            n_stories, n_articles = len(shown), sum(len(s.articles) for s in shown)
            if dry_run_dir is not None:  # what would be sent, as it would be sent
                stem = f"{name}-{now:%Y%m%dT%H%M%S}-{digest_id}"
                path = (
                    write_eml(message, dry_run_dir, stem)
                    if body is None
                    else webhook.write_json(body, dry_run_dir, stem)
                )
                return DigestOutcome(
                    name, "dry_run", digest_id, n_stories, n_articles, path=str(path)
                )
            digests.record_digest(
                con,
                digest_id=digest_id,
                subscription=name,
                recipients=_recipients(subscription),
                subject=rendered.subject,
                message_id=str(message["Message-ID"]),
                shown=shown,
                not_shown=rest,
                now=now,
            )
        # the warehouse is not held open while talking to the SMTP server (or the webhook)
        error: str | None = None
        try:
            if body is None:
                send(message, settings, password)
            else:
                webhook.post(subscription.url, body, settings.smtp_timeout_s)
        except SendError as e:
            with connect(db_path) as con:
                digests.finish_digest(con, digest_id, "failed", _now(), e.reason, e.detail)
            return DigestOutcome(name, "failed", digest_id, reason=e.reason, error=e.detail)
        except PartiallySent as e:
            error = f"refused recipients: {e}"
        with connect(db_path) as con:
            digests.finish_digest(con, digest_id, "sent", _now(), error=error)
        return DigestOutcome(name, "sent", digest_id, n_stories, n_articles, error=error)


def _recipients(subscription: Subscription) -> tuple[str, ...]:
    """Who the delivery log says a digest went to: the addresses, or the channel and the
    webhook's host (its address is a credential)."""
    if subscription.channel == "email":
        return subscription.recipients
    return (f"{subscription.channel}:{urlsplit(subscription.url).hostname}",)


def _now() -> datetime:
    return datetime.now(UTC)


@task(name="send-digest", cache_policy=NO_CACHE)
def digest_task(
    db_path: Path,
    subscription: Subscription,
    settings: Settings,
    alerts_file: str,
    force: bool,
    dry_run_dir: Path | None,
    password: Secret | None,
) -> DigestOutcome:
    outcome = run_digest(
        db_path,
        subscription,
        settings,
        alerts_file=alerts_file,
        force=force,
        dry_run_dir=dry_run_dir,
        password=password,
    )
    logger = get_run_logger()
    if outcome.status == "failed":
        logger.error(
            "digest %s failed (%s): %s; its items are kept for the next run",
            subscription.name,
            outcome.reason,
            outcome.error,
        )
    else:
        logger.info(
            "digest %s: %s (%d stories, %d articles)",
            subscription.name,
            outcome.status,
            outcome.stories,
            outcome.articles,
        )
    return outcome


@flow(name="digest", log_prints=False)
def digest(
    db: str,
    alerts_file: str,
    topics_file: str,
    subscription: str | None = None,
    dry_run_dir: str | None = None,
) -> list[DigestOutcome]:
    """Send the digests that are due; with ``subscription``, that one now, due or not."""
    settings = Settings.from_env()
    subs = select_subscriptions(Path(alerts_file), Path(topics_file), subscription)
    password = None if dry_run_dir else resolve_password(settings)
    return [
        digest_task(
            Path(db),
            sub,
            settings,
            alerts_file,
            subscription is not None,
            Path(dry_run_dir) if dry_run_dir else None,
            password,
        )
        for sub in subs
    ]


def select_subscriptions(
    alerts_file: Path, topics_file: Path, name: str | None
) -> list[Subscription]:
    """The validated subscriptions (all, or the one named); raises ConfigError."""
    from newsmon.core.errors import ConfigError

    subs = load_alerts(alerts_file, load_topics(topics_file).names)
    if name is None:
        return subs
    chosen = [s for s in subs if s.name == name]
    if not chosen:
        names = ", ".join(s.name for s in subs)
        raise ConfigError(
            alerts_file, "subscriptions", f"no subscription {name!r}", f"use: {names}"
        )
    return chosen
