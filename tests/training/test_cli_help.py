"""Every command's --help reads as a CLI, not as Python: no `<bool>` on flags, no
`list[...]` types, no doubled `--no-no-` switches."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from airparadis_cli.app import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Typer carries its own copy of click, so walk groups by their `commands` mapping."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_help_of_every_command_reads_as_a_cli() -> None:
    root = typer.main.get_command(app)
    paths = _commands(root)
    assert ("train",) in paths and ("data", "prepare") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "160"})
        assert result.exit_code == 0, (path, result.output)
        for bad in ("<bool>", "list[", "--no-no-"):
            assert bad not in result.output, (path, bad, result.output)
