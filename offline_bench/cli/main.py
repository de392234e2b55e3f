"""The command line: the typer `app` (each command from its group's module, listed in help order), `run_app`
(the exit status of one command line, usable in-process) and `main` (the console script).

Commands take typed flag groups (`configs`, expanded by `flags.command`), call the library, print; only this
package installs signal handlers, prints warnings and draws progress (`terminal`).
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Annotated

import typer

from offline_bench.cli import analyse, gap, measure, predict, roofline, serving, sweep, tune, utilities
from offline_bench.cli.grouped_help import GroupedHelp
from offline_bench.cli.terminal import library_warnings, sigterm_unwinds
from offline_bench.core.environment import record_command
from offline_bench.core.errors import BenchError
from offline_bench.core.procs import raise_interrupt
from offline_bench.core.version import versions_line

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, cls=GroupedHelp)

# `offline-bench --help` lists the commands in this order, under these headings (the one list of the commands)
COMMAND_GROUPS = (
    ("Measure", (measure.run, sweep.sweep, measure.phases, gap.explain_gap, serving.serve_probe)),
    ("Predict (no engine)", (predict.plan, predict.predict_cmd, tune.tune, roofline.roofline)),
    ("Analyse results", (analyse.compare, analyse.scaling, analyse.startup, analyse.report)),
    ("Utilities", (serving.serve_preset, utilities.import_results, utilities.presets)),
)
COMMANDS = tuple(cmd for _, cmds in COMMAND_GROUPS for cmd in cmds)
for _group, _cmds in COMMAND_GROUPS:
    for _cmd in _cmds:
        app.command(_cmd.cli_name, rich_help_panel=_group, **_cmd.cli_settings)(_cmd)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(versions_line())
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                                help="Print offline-bench's version and the installed vLLM's.")]
          = False) -> None:
    """Measure what vLLM's in-process engine really does.

    Example: offline-bench run --model preset:tiny-llama --num-prompts 100
    """


def _click_exceptions():  # noqa: ANN202 - the click module typer really uses
    """typer >= 0.24 carries its own copy of click (typer._click); older releases use the click package."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


INTERRUPTED = "interrupted (results already written are kept; a sweep resumes where it stopped)"


def run_app(args: list[str] | None = None) -> int:
    """Run the CLI and return its exit status: 0, 2 for bad input or usage (one line, or typer's usage
    message), 130 on Ctrl-C (or SIGTERM, which unwinds the same way while a command runs)."""
    click_exc = _click_exceptions()
    aborts = (KeyboardInterrupt, typer.Abort, getattr(click_exc, "Abort", typer.Abort))
    record_command(sys.argv[1:] if args is None else list(args))
    try:
        with sigterm_unwinds(), library_warnings():
            rv = app(args=args, prog_name="offline-bench", standalone_mode=False)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except click_exc.ClickException as e:  # usage errors: unknown option or command, bad value, missing argument
        e.show()
        return e.exit_code
    except aborts:
        rv = 130
    except typer.Exit as e:  # older typer raises it instead of returning the status
        rv = e.exit_code
    if rv == 130:  # typer turns Ctrl-C into a returned 130 in this mode
        print(INTERRUPTED, file=sys.stderr)
    return rv if isinstance(rv, int) else 0


def main() -> None:
    # SIGTERM (`timeout`, a scheduler's limit) unwinds like Ctrl-C from the start: the engine is shut down,
    # --save-log written
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        sys.exit(run_app())
    except KeyboardInterrupt:  # Ctrl-C outside the command itself (while importing, say)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
