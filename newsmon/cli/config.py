"""``newsmon config``: the configuration a user edits, on top of the defaults the package ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import tomlkit

from newsmon.cli.options import UserError, handle_errors
from newsmon.core.errors import ConfigError
from newsmon.core.paths import DEFAULT_CONFIG_DIR

# what a user edits: the three files, the digest templates and the topic's relevance model
# (``newsmon train`` writes a new one beside the topics file)
EDITABLE = ("feeds.toml", "topics.toml", "alerts.toml", "templates", "models")


@click.group()
def config() -> None:
    """The configuration files: the shipped defaults, and editable copies of them."""


@config.command(name="init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace files already in DIRECTORY.")
@handle_errors
def config_init(directory: Path, force: bool) -> None:
    """Write editable copies of the default feeds, topics, alerts, digest templates and model
    into DIRECTORY; newsmon reads them when NEWSMON_CONFIG_DIR points there."""
    targets = [directory / name for name in EDITABLE]
    clash = next((t for t in targets if t.exists()), None)
    if clash is not None and not force:
        raise UserError(
            ConfigError(clash, "", "already exists", "edit it, or add --force to replace it")
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, target in zip(EDITABLE, targets, strict=True):
            source = DEFAULT_CONFIG_DIR / name
            if source.is_dir():
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target)
            else:
                shutil.copyfile(source, target)
        _pin_examples(directory / "topics.toml")
    except OSError as exc:
        raise UserError(
            ConfigError(
                directory, "", f"cannot write: {exc.strerror}", "choose a folder you can write"
            )
        ) from None
    resolved = directory.resolve()
    click.echo(f"Wrote {', '.join(EDITABLE)} to {resolved}")
    click.echo(f"Use them: export NEWSMON_CONFIG_DIR={resolved}")


def _pin_examples(topics_file: Path) -> None:
    """Topics name their baseline examples relative to the topics file; a copy elsewhere points
    at the shipped baseline by its absolute path (the seeds stay the package's)."""
    document = tomlkit.parse(topics_file.read_text(encoding="utf-8"))
    for topic in document.get("topics", {}).values():
        examples = topic.get("examples")
        if isinstance(examples, str) and not Path(examples).is_absolute():
            topic["examples"] = str((DEFAULT_CONFIG_DIR / examples).resolve())
    topics_file.write_text(tomlkit.dumps(document), encoding="utf-8")


__all__ = ["config"]
