"""`offline-bench --help`: the commands under the heading of their group, each with its whole first sentence."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

WHOLE = 10**6  # no truncation: a summary is the docstring's first sentence, kept short enough for one line


def summary(cmd: Any) -> str:
    """A command's one-line description: its docstring's first sentence, never cut off."""
    return cmd.get_short_help_str(limit=WHOLE)


class GroupedHelp(TyperGroup):
    """Commands listed under their `rich_help_panel` (set by `cli.main` from its COMMANDS), in registration order
    (typer's own panels need its rich mode, which this app leaves off for plain, copyable help)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                groups.setdefault(getattr(cmd, "rich_help_panel", None) or "Commands", []).append((name, summary(cmd)))
        width = max((len(name) for rows in groups.values() for name, _ in rows), default=0)
        for heading, rows in groups.items():
            with formatter.section(heading):  # names padded alike: the descriptions line up across groups
                formatter.write_dl([(name.ljust(width), text) for name, text in rows])
