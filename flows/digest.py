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

import dataclasses
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
from newsmon.core.alerts import Subscription, is_due, load_alerts, next_due, subscription_from
from newsmon.core.errors import ConfigError
from newsmon.core.locks import exclusive, lock_path
from newsmon.core.settings import Secret, Settings
from newsmon.core.signing import secret_for, unsubscribe_token
from newsmon.extractors.netguard import AddressPolicy, url_refusal
from newsmon.extractors.topics import load_topics
from newsmon.warehouse import digests, subscriptions
from newsmon.warehouse.store import connect


@dataclass(frozen=True)
class DigestOutcome:
    subscription: str
    status: str  # sent | empty | failed | dry_run | not_due | busy | paused | invalid
    digest_id: str | None = None
    stories: int = 0
    articles: int = 0
    reason: str | None = None
    error: str | None = None
    path: str | None = None  # the .eml file of a dry run (the first: see paths)
    paths: tuple[str, ...] = ()  # a dry run's files, one per recipient


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
    """Build and deliver one subscription's digest if it is due (or ``force``).

    An e-mail subscription sends one message per recipient that has not unsubscribed, each with
    its own delivery log, schedule and unsubscribe link; the outcome sums them up (``failed``
    if any failed: the others are not sent again).
    """
    now = now or datetime.now(UTC)
    name = subscription.name
    if subscription.paused:
        return DigestOutcome(name, "paused")
    with subscription_lock(db_path, name) as locked:
        if not locked:
            return DigestOutcome(name, "busy", error="another digest of it is running")
        targets: list[str | None] = [None]
        if subscription.channel == "email":
            with connect(db_path, read_only=True) as con:
                left = subscriptions.unsubscribed_from(con, name, list(subscription.recipients))
            once: dict[str, str] = {}  # an address listed twice (in any case) gets one message
            for r in subscription.recipients:
                once.setdefault(r.lower(), r)
            targets = [r for r in once.values() if r not in left]
            if not targets:
                return DigestOutcome(name, "empty", reason="everyone unsubscribed")
        secret = (
            secret_for(db_path, settings.web_secret.reveal() if settings.web_secret else None)
            if settings.web_url and subscription.channel == "email"
            else None
        )
        job = _Delivery(
            db_path, subscription, settings, alerts_file, now, force, dry_run_dir, password,
            templates_dir or settings.templates_dir, secret,
        )  # fmt: skip
        return _summed(name, [job.deliver(target) for target in targets])


@dataclass(frozen=True)
class _Delivery:
    """One subscription's digest run, delivered to one target at a time (an address, or the
    webhook: None) under the subscription's lock."""

    db_path: Path
    subscription: Subscription
    settings: Settings
    alerts_file: str
    now: datetime
    force: bool
    dry_run_dir: Path | None
    password: Secret | None
    templates_dir: Path
    secret: bytes | None

    def deliver(self, recipient: str | None) -> DigestOutcome:
        sub, now, name = self.subscription, self.now, self.subscription.name
        digest_id = uuid.uuid4().hex[:16]
        logged_to = (recipient,) if recipient else _recipients(sub)
        with connect(self.db_path) as con:
            if not self.force and not is_due(sub, digests.last_run(con, name, recipient), now):
                return DigestOutcome(name, "not_due")
            since = digests.selection_start(con, name, recipient, sub.backfill_days, now)
            articles = digests.candidates(
                con, name, recipient, sub.topics, sub.min_score, sub.languages, since
            )
            stories = digests.group_stories(articles)
            if not stories:
                if self.dry_run_dir is None:
                    digests.record_empty(con, digest_id, name, recipient, logged_to, now)
                return DigestOutcome(name, "empty", digest_id)
            shown, rest = stories[: sub.max_items], stories[sub.max_items :]
            unsubscribe_url = ""
            if self.secret and recipient:
                token = unsubscribe_token(self.secret, name, recipient)
                unsubscribe_url = f"{self.settings.web_url}/unsubscribe/{token}"
            rendered = render(
                sub,
                shown,
                more=len(rest),
                failing_feeds=digests.failing_feeds(con, now),
                next_at=next_due(sub, now),
                generated_at=now,
                alerts_file=self.alerts_file,
                templates_dir=self.templates_dir,
                web_url=self.settings.web_url,
                recipient=recipient or "",
                unsubscribe_url=unsubscribe_url,
            )
            message = build_message(
                rendered,
                sender=self.settings.smtp_from,
                recipients=logged_to if recipient else sub.recipients,
                digest_id=digest_id,
                now=now,
                list_name=name,
                unsubscribe_url=unsubscribe_url,
            )
            # a webhook's body (None: the e-mail goes, as built above)
            body = (
                None
                if sub.channel == "email"
                else webhook.payload(sub.channel, name, shown, len(rest), now)
            )
            n_stories, n_articles = len(shown), sum(len(s.articles) for s in shown)
            if self.dry_run_dir is not None:  # what would be sent, as it would be sent
                to = f"-{recipient}" if recipient else ""
                stem = f"{name}{to}-{now:%Y%m%dT%H%M%S}-{digest_id}"
                path = (
                    write_eml(message, self.dry_run_dir, stem)
                    if body is None
                    else webhook.write_json(body, self.dry_run_dir, stem)
                )
                return DigestOutcome(
                    name,
                    "dry_run",
                    digest_id,
                    n_stories,
                    n_articles,
                    path=str(path),
                    paths=(str(path),),
                )
            digests.record_digest(
                con,
                digest_id=digest_id,
                subscription=name,
                recipient=recipient,
                recipients=logged_to,
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
                send(message, self.settings, self.password)
            else:
                if sub.owner:  # a reading-room user's webhook: the feeds' address policy
                    why = url_refusal(AddressPolicy.of(self.settings), sub.url)
                    if why is not None:
                        raise SendError("blocked_address", why)
                webhook.post(
                    sub.url, body, self.settings.smtp_timeout_s, channel=sub.channel, txn=digest_id
                )
        except SendError as e:
            with connect(self.db_path) as con:
                digests.finish_digest(con, digest_id, "failed", _now(), e.reason, e.detail)
            detail = f"{recipient}: {e.detail}" if recipient else e.detail
            return DigestOutcome(name, "failed", digest_id, reason=e.reason, error=detail)
        except PartiallySent as e:
            error = f"refused recipients: {e}"
        with connect(self.db_path) as con:
            digests.finish_digest(con, digest_id, "sent", _now(), error=error)
        return DigestOutcome(name, "sent", digest_id, n_stories, n_articles, error=error)


_PRECEDENCE = ("failed", "sent", "dry_run", "empty", "not_due")


def _summed(name: str, outcomes: list[DigestOutcome]) -> DigestOutcome:
    """One subscription's outcome from its deliveries': the most telling status (a failure
    first), the largest digest, every failure's and file's detail."""
    if len(outcomes) == 1:
        return outcomes[0]
    status = min((o.status for o in outcomes), key=_PRECEDENCE.index)
    lead = next(o for o in outcomes if o.status == status)
    errors = [o.error for o in outcomes if o.error]
    paths = tuple(p for o in outcomes for p in o.paths)
    return DigestOutcome(
        name,
        status,
        lead.digest_id,
        max(o.stories for o in outcomes),
        max(o.articles for o in outcomes),
        reason=lead.reason,
        error="; ".join(errors) or None,
        path=paths[0] if paths else None,
        paths=paths,
    )


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
    """Send the digests that are due (alerts.toml's and the reading room's); with
    ``subscription``, that one now, due or not."""
    settings = Settings.from_env()
    subs, skipped = all_subscriptions(Path(alerts_file), Path(topics_file), Path(db))
    if subscription is not None:
        subs = [s for s in subs if s.name == subscription]
        skipped = [o for o in skipped if o.subscription == subscription]
    logger = get_run_logger()
    for outcome in skipped:
        logger.warning("subscription %s skipped: %s", outcome.subscription, outcome.error)
    password = None if dry_run_dir else resolve_password(settings)
    return skipped + [
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


def all_subscriptions(
    alerts_file: Path, topics_file: Path, db_path: Path | None
) -> tuple[list[Subscription], list[DigestOutcome]]:
    """alerts.toml's subscriptions (a bad file raises ConfigError) and those made in the
    reading room (``db_path``'s); a stored one that no longer validates (a topic removed since,
    a name alerts.toml now uses) is not sent, and comes back as an ``invalid`` outcome."""
    topics = load_topics(topics_file).names
    subs = load_alerts(alerts_file, topics)
    if db_path is None or not db_path.exists():
        return subs, []
    taken = {s.name for s in subs}
    with connect(db_path) as con:
        rows = subscriptions.stored(con)
    skipped: list[DigestOutcome] = []
    for row in rows:
        try:
            if row.name in taken:
                raise ConfigError(
                    "reading room", row.name, f"{alerts_file} has a subscription of that name",
                    "rename it on the Alerts page",
                )  # fmt: skip
            sub = subscription_from("reading room", "subscription", row.entry, topics)
        except ConfigError as e:
            skipped.append(DigestOutcome(row.name, "invalid", reason="invalid", error=str(e)))
            continue
        subs.append(dataclasses.replace(sub, paused=row.paused, owner=row.created_by))
    return subs, skipped


def select_subscriptions(
    alerts_file: Path, topics_file: Path, name: str | None, db_path: Path | None = None
) -> list[Subscription]:
    """The validated subscriptions (all, or the one named), with the reading room's when
    ``db_path`` is given; raises ConfigError."""
    subs = all_subscriptions(alerts_file, topics_file, db_path)[0]
    if name is None:
        return subs
    chosen = [s for s in subs if s.name == name]
    if not chosen:
        names = ", ".join(s.name for s in subs)
        raise ConfigError(
            alerts_file, "subscriptions", f"no subscription {name!r}", f"use: {names}"
        )
    return chosen
