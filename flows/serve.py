"""``newsmon serve``: Prefect deployments of ``ingest`` and ``digest``, served by this process.

Orchestration only. ``ingest`` runs every ``ingest_interval_s`` (default 2 minutes) and polls only
the feeds whose adaptive schedule says they are due (see :mod:`extractors.schedule`), so a new
item reaches the warehouse within about one interval while quiet feeds are polled rarely.
``digest`` runs every ``digest_interval_s`` (default 1 minute) and sends each subscription
whose schedule has come (``immediate`` ones whenever there is something new). Both retry
transient failures and have a timeout. Prefect's temporary server cannot schedule flows, so
``PREFECT_API_URL`` must point at a running server (``prefect server start``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import serve

from flows.digest import digest
from flows.ingest import ingest


@dataclass(frozen=True)
class ServeConfig:
    db: Path
    feeds_file: Path
    topics_file: Path
    alerts_file: Path | None  # None: no digest deployment
    ingest_interval_s: float = 120.0
    digest_interval_s: float = 60.0
    retries: int = 2
    retry_delay_s: float = 30.0
    ingest_timeout_s: float = 1800.0
    digest_timeout_s: float = 600.0


def _deployment(
    flow: Any,
    config: ServeConfig,
    name: str,
    interval_s: float,
    timeout_s: float,
    parameters: dict[str, Any],
    description: str,
) -> object:
    """One deployment of ``flow`` on an interval, with the shared retries and its timeout."""
    return flow.with_options(
        retries=config.retries,
        retry_delay_seconds=config.retry_delay_s,
        timeout_seconds=timeout_s,
    ).to_deployment(
        name=name,
        interval=interval_s,
        parameters=parameters,
        description=description,
        tags=["newsmon"],
    )


def deployments(config: ServeConfig) -> list[object]:
    """The deployments ``serve`` runs, with their parameters, schedules, retries and timeouts."""
    files = {"db": str(config.db), "topics_file": str(config.topics_file)}
    deps = [
        _deployment(
            ingest,
            config,
            "newsmon-ingest",
            config.ingest_interval_s,
            config.ingest_timeout_s,
            {**files, "feeds_file": str(config.feeds_file), "only_due": True},
            "Poll the feeds that are due and load what is new.",
        )
    ]
    if config.alerts_file is not None:
        deps.append(
            _deployment(
                digest,
                config,
                "newsmon-digest",
                config.digest_interval_s,
                config.digest_timeout_s,
                {**files, "alerts_file": str(config.alerts_file)},
                "E-mail the digests that are due.",
            )
        )
    return deps


def serve_forever(config: ServeConfig) -> None:
    """Serve the deployments until interrupted (Ctrl-C / SIGINT)."""
    serve(*deployments(config))  # type: ignore[arg-type]


__all__ = ["ServeConfig", "deployments", "serve_forever"]
