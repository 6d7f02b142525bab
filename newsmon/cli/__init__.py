"""The ``newsmon`` command line: a thin layer over ``flows``, ``warehouse`` and ``extractors``.

One module per command family (run, query, feeds, digest, serve, learn, demo); how they print is
:mod:`newsmon.cli.render`, the shared options and the error boundary :mod:`newsmon.cli.options`.

Exit status (every command):
  0  done. For ``run``: the run completed, even if some feeds or pages failed (they are recorded
     in the warehouse and listed in the summary, and retried next time).
  1  the command could not do its work (the warehouse cannot be opened or written, a query failed,
     the flow crashed); the message says why.
  2  bad usage or configuration (a config file, a NEWSMON_* variable, an option): nothing was done.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from newsmon import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsmon")
def cli() -> None:
    """newsmon: watch news feeds for EU-NATO defence affairs and load them into DuckDB."""


def _register() -> None:
    from newsmon.cli import config, demo, digest, feeds, learn, query, run, serve, web

    for command in (
        run.init, run.run, run.status, run.checkpoint, run.rescore,
        query.sql, query.search, query.export,
        feeds.feeds, digest.digest, serve.serve, serve.deploy,
        learn.train, learn.label, learn.eval_, demo.demo, config.config, web.web, web.web_user,
    ):  # fmt: skip
        cli.add_command(command)


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """The ``newsmon`` command. The long commands run under :mod:`newsmon.cli.supervise`, so
    SIGINT and SIGTERM stop them at once, with one line."""
    import sys

    from newsmon.cli.supervise import supervise

    args = list(argv) if argv is not None else sys.argv[1:]
    status = supervise(args)
    if status is not None:
        sys.exit(status)
    cli.main(args=args, prog_name="newsmon")


__all__ = ["cli", "main"]
