"""The command line: the typer `app` (each command from its group's module, listed in help order), `run_app`
(the exit status of one command line, usable in-process) and `main` (the console script).

Commands take typed flag groups (`configs`, expanded by `flags.command`), call the library, print; only this
package installs signal handlers, prints warnings and draws progress (`terminal`).
"""

from __future__ import annotations

import importlib
import signal
import sys

import typer

from offline_bench.cli import analyse, gap, measure, predict, serving, sweep, utilities
from offline_bench.cli.terminal import library_warnings, sigterm_unwinds
from offline_bench.core.environment import record_command
from offline_bench.core.errors import BenchError
from offline_bench.core.procs import raise_interrupt

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Measure what vLLM's in-process engine really does. Example: offline-bench run")

# `offline-bench --help` lists them in this order. Groups: measure (run, sweep, phases, explain-gap), serving
# (serve-probe, serve-preset), predict (plan, predict, roofline), analyse (startup, compare, scaling, report),
# utilities (import, presets).
COMMANDS = (measure.run, sweep.sweep, analyse.startup, serving.serve_probe, serving.serve_preset, analyse.compare,
            analyse.scaling, utilities.import_results, gap.explain_gap, predict.plan, predict.predict_cmd,
            predict.roofline, measure.phases, analyse.report, utilities.presets)
for _cmd in COMMANDS:
    app.command(_cmd.cli_name, **_cmd.cli_settings)(_cmd)


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
