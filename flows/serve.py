"""``newsmon serve``: Prefect deployments of ``ingest`` and ``digest``, served by this process.

Orchestration only. ``ingest`` runs every ``ingest_interval_s`` (default 2 minutes) and polls only
the feeds whose adaptive schedule says they are due (see :mod:`newsmon.extractors.schedule`), so a
new item reaches the warehouse within about one interval while quiet feeds are polled rarely.
``digest`` runs every ``digest_interval_s`` (default 1 minute) and sends each subscription
whose schedule has come (``immediate`` ones whenever there is something new). Both retry
transient failures and have a timeout. Prefect's temporary server cannot schedule flows, so
``PREFECT_API_URL`` must point at a running server (``prefect server start``).

``newsmon deploy`` registers the same deployments on a work pool instead (:func:`deploy_to_pool`),
for Prefect workers on any number of machines to run; the ingest deployment is split into
``shards`` deployments, one per shard of the feed list (extractors/shards.py), so several
workers poll disjoint feed sets at once. Workers import the flows by module path
(``newsmon.flows.serve:pooled_ingest``), so they need newsmon installed; the flows keep their
retries and timeouts (:data:`pooled_ingest`, :data:`pooled_digest`).

Every deployment name carries the warehouse's instance name (``newsmon-ingest-INSTANCE``;
default: the file's name and a hash of its path, :func:`instance_for`), and neither command
replaces a deployment that serves another warehouse (:func:`refuse_replacing`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect import deploy, serve
from prefect.client.orchestration import get_client
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.types.entrypoint import EntrypointType

from newsmon.core.errors import ConfigError
from newsmon.flows.digest import digest
from newsmon.flows.ingest import ingest

INSTANCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


def instance_for(db: Path) -> str:
    """The default instance name of a warehouse: its file name and a short hash of its absolute
    path, so two warehouses never share deployment names on one Prefect server."""
    stem = re.sub(r"[^a-z0-9-]+", "-", db.stem.lower()).strip("-")[:24] or "warehouse"
    return f"{stem}-{hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:6]}"


def check_instance(name: str) -> str:
    """``name`` if it can be part of a deployment name, else a ConfigError with the fix."""
    if not INSTANCE_NAME.fullmatch(name):
        raise ConfigError(
            "--instance", name, "must be 1-40 lower-case letters, digits or dashes", "e.g. main"
        )
    return name


@dataclass(frozen=True)
class ServeConfig:
    db: Path
    feeds_file: Path
    topics_file: Path
    alerts_file: Path | None  # None: no digest deployment
    # part of every deployment name: `newsmon-ingest-INSTANCE` (default: instance_for(db))
    instance: str = field(default="")
    # an `immediate` subscription exists: no feed waits longer than this (issue 21), and an
    # ingest that stored relevant articles sends the due digests at once
    poll_ceiling_s: float | None = None
    ingest_interval_s: float = 120.0
    digest_interval_s: float = 60.0
    retries: int = 2
    retry_delay_s: float = 30.0
    ingest_timeout_s: float = 1800.0
    digest_timeout_s: float = 600.0


def _retrying(flow: Any, config: ServeConfig, timeout_s: float) -> Any:
    """``flow`` with the shared retries and its timeout."""
    return flow.with_options(
        retries=config.retries, retry_delay_seconds=config.retry_delay_s, timeout_seconds=timeout_s
    )


_DEFAULTS = ServeConfig(Path(), Path(), Path(), None)

# What a worker imports for a pool deployment (a deployment stores parameters and a schedule,
# not the flow's options): the flows with the default retries and timeouts.
pooled_ingest = _retrying(ingest, _DEFAULTS, _DEFAULTS.ingest_timeout_s)
pooled_digest = _retrying(digest, _DEFAULTS, _DEFAULTS.digest_timeout_s)


@dataclass(frozen=True)
class _Spec:
    kind: str  # ingest | digest
    name: str
    interval_s: float
    parameters: dict[str, Any]
    description: str


def _specs(config: ServeConfig, shards: int = 1) -> list[_Spec]:
    """The deployments to make: one ingest per shard (the whole list: one), and the digest.
    ``config`` is :func:`_absolute`'s: absolute paths, the instance named."""
    files = {"db": str(config.db), "topics_file": str(config.topics_file)}
    instance = config.instance
    out = []
    for i in range(1, shards + 1):
        parameters: dict[str, Any] = {**files, "feeds_file": str(config.feeds_file)}
        parameters["only_due"] = True
        if config.poll_ceiling_s is not None and config.alerts_file is not None:
            parameters["poll_ceiling_s"] = config.poll_ceiling_s
            parameters["alerts_file"] = str(config.alerts_file)
        if shards == 1:
            name, description = (
                f"newsmon-ingest-{instance}",
                "Poll the feeds that are due and load what is new.",
            )
        else:
            parameters["shard"] = f"{i}/{shards}"
            name = f"newsmon-ingest-{instance}-{i}-of-{shards}"
            description = f"Poll the due feeds of shard {i}/{shards} and load what is new."
        out.append(_Spec("ingest", name, config.ingest_interval_s, parameters, description))
    if config.alerts_file is not None:
        parameters = {**files, "alerts_file": str(config.alerts_file)}
        description = "E-mail the digests that are due."
        out.append(
            _Spec(
                "digest",
                f"newsmon-digest-{instance}",
                config.digest_interval_s,
                parameters,
                description,
            )
        )
    return out


def _absolute(config: ServeConfig) -> ServeConfig:
    return replace(
        config,
        db=config.db.resolve(),
        feeds_file=config.feeds_file.resolve(),
        topics_file=config.topics_file.resolve(),
        alerts_file=config.alerts_file.resolve() if config.alerts_file else None,
        instance=config.instance or instance_for(config.db),
    )


def names(config: ServeConfig, shards: int = 1) -> list[str]:
    """The deployment names ``serve`` (one shard) or ``deploy`` would register."""
    return [spec.name for spec in _specs(_absolute(config), shards)]


def refuse_replacing(config: ServeConfig, shards: int = 1) -> None:
    """A ConfigError, before anything is registered, when one of our deployment names is taken
    on the Prefect server by a deployment of another warehouse (`deploy` would silently replace
    a running `serve`'s deployments, and its digests then read another warehouse)."""
    config = _absolute(config)
    with get_client(sync_client=True) as client:
        for spec in _specs(config, shards):
            try:
                existing = client.read_deployment_by_name(f"{spec.kind}/{spec.name}")
            except ObjectNotFound:
                continue
            other = (existing.parameters or {}).get("db")
            if other is not None and Path(str(other)) != config.db:
                raise ConfigError(
                    "--instance",
                    config.instance,
                    f"deployment {spec.kind}/{spec.name} on this Prefect server serves {other}",
                    "give this warehouse its own --instance NAME, or delete that deployment "
                    f"(prefect deployment delete '{spec.kind}/{spec.name}')",
                )


def deployments(config: ServeConfig) -> list[object]:
    """The deployments ``serve`` runs, with their parameters, schedules, retries and timeouts."""
    config = _absolute(config)
    flows = {
        "ingest": _retrying(ingest, config, config.ingest_timeout_s),
        "digest": _retrying(digest, config, config.digest_timeout_s),
    }
    return [
        flows[spec.kind].to_deployment(
            name=spec.name,
            interval=spec.interval_s,
            parameters=spec.parameters,
            description=spec.description,
            tags=["newsmon"],
        )
        for spec in _specs(config)
    ]


def pool_deployments(config: ServeConfig, shards: int) -> list[RunnerDeployment]:
    """What :func:`deploy_to_pool` registers: ``shards`` ingest deployments
    (``newsmon-ingest-I-of-N``, parameter ``shard="I/N"``) and the digest one, with absolute
    paths (a worker runs each flow in a directory of its own)."""
    absolute = _absolute(config)
    flows = {"ingest": pooled_ingest, "digest": pooled_digest}
    out: list[RunnerDeployment] = []
    for spec in _specs(absolute, shards):
        deployment: RunnerDeployment = flows[spec.kind].to_deployment(
            name=spec.name,
            interval=spec.interval_s,
            parameters=spec.parameters,
            description=spec.description,
            tags=["newsmon"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        # the module attribute holding the flow with its options, not the bare function's
        deployment.entrypoint = f"newsmon.flows.serve.pooled_{spec.kind}"
        out.append(deployment)
    return out


def deploy_to_pool(config: ServeConfig, pool: str, shards: int) -> list[str]:
    """Register :func:`pool_deployments` on the work pool ``pool``; return their names. Raises
    LookupError when there is no such pool, and ConfigError when a name is another
    warehouse's (:func:`refuse_replacing`), before registering anything."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            raise LookupError(f"no work pool named {pool!r} on this Prefect server") from None
    refuse_replacing(config, shards)
    deps = pool_deployments(config, shards)
    deploy(
        *deps,
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    return [d.name for d in deps]


def serve_forever(config: ServeConfig) -> None:
    """Serve the deployments until interrupted (newsmon/cli/supervise.py stops it); call
    :func:`refuse_replacing` first."""
    serve(*deployments(config))  # type: ignore[arg-type]


__all__ = [
    "ServeConfig",
    "check_instance",
    "deploy_to_pool",
    "deployments",
    "instance_for",
    "names",
    "pool_deployments",
    "pooled_digest",
    "pooled_ingest",
    "refuse_replacing",
    "serve_forever",
]
