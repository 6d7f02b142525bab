"""Write docs/cli.md from the commands' own --help (tests/cli/test_cli_doc.py checks it is current).

.venv/bin/python docs/generate_cli.py        # or: make docs
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from newsmon.cli import cli

DOC = Path(__file__).with_name("cli.md")
HEADER = """\
# Command reference

Generated from each command's `--help` by `docs/generate_cli.py` (`make docs`); a test fails when
it is out of date. The README's how-tos show the commands at work; exit status: 0 done, 1 the
work failed (the message says why), 2 bad usage or configuration (nothing was done).
"""


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    context = click.Context(group, info_name="newsmon")
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def reference() -> str:
    runner = CliRunner()
    parts = [HEADER]
    for path in [(), *commands(cli)]:
        result = runner.invoke(
            cli, [*path, "--help"], prog_name="newsmon", terminal_width=100, env={"COLUMNS": "100"}
        )
        assert result.exit_code == 0, result.output
        title = " ".join(("newsmon", *path))
        parts.append(f"\n## `{title}`\n\n```text\n{result.output.rstrip()}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    DOC.write_text(reference(), encoding="utf-8")
    print(f"wrote {DOC}")
