"""The ``digest`` Prefect flow: e-mail each subscription that is due (or one, now).

Orchestration only: the work for one subscription is :func:`newsmon.digest.run_digest`, one
coarse task each. The alerts and topics files are validated before any work; a failed delivery is
logged, recorded in ``digests`` and retried on the next run, and does not stop the others.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from extractors.topics import load_topics
from newsmon.alerts import Subscription, load_alerts
from newsmon.config import Secret, Settings
from newsmon.digest import DigestOutcome, resolve_password, run_digest


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
    from newsmon.errors import ConfigError

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
