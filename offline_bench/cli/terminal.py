"""What only the CLI does to the terminal and the process: SIGTERM unwinds like Ctrl-C, the library's warnings
become `warning: ...` lines on stderr, progress bars, and results printed (a file that could not be written
after the measurement: one `error: ...` line and exit status 1, the results printed all the same)."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from offline_bench.core.procs import raise_interrupt
from offline_bench.report import html as htmlreport
from offline_bench.report.formats import render
from offline_bench.results.load import Item
from offline_bench.results.run import Kept, Unwritten, keep_file

LIBRARY_LOGGER = "offline_bench"  # every module logs under it (logging.getLogger(__name__))
# the exit status of a command that did its work but could not write a file of it (disk full, folder gone, no
# permission): what it printed is whole, and the file's content is in the temp directory the error line names
OUTPUT_LOST = 1


class _WarningLines(logging.Handler):
    """A library record as the line it always was: `warning: MESSAGE` on stderr (whatever stderr is now: while an
    engine runs, its log capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"{record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's rule: a failed print never ends the program
            self.handleError(record)


@contextlib.contextmanager
def library_warnings() -> Iterator[None]:
    """While a command runs, the library's warnings print as lines of their own (and only here)."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    handler, propagate, level = _WarningLines(logging.WARNING), logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (`timeout`, a scheduler's limit) raises KeyboardInterrupt like Ctrl-C, so a run's engine is shut
    down, a sweep's worker killed and --save-log written; the previous handler is back afterwards."""
    if threading.current_thread() is not threading.main_thread():  # signals belong to the main thread
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_progress(console_file: TextIO) -> Callable[[str, int], contextlib.AbstractContextManager]:
    """`run`'s progress bars, drawn on `console_file` (the terminal, while the engine's log capture holds fd 2)."""
    console = Console(file=console_file)

    @contextlib.contextmanager
    def factory(desc: str, total: int) -> Iterator[Callable[[int], None]]:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(desc, total=total)
            yield lambda n: bar.advance(task, n)

    return factory


@contextlib.contextmanager
def sweep_progress(total: int) -> Iterator[Callable[[int, int, str, str], None]]:
    """A sweep's progress bar and a line per point on stderr: yields the `on_point` callback of `run_sweep`."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True)) as bar:
        task = bar.add_task("sweep", total=total)

        def on_point(n: int, total: int, key: str, state: str) -> None:
            if state == "running":
                bar.update(task, description=f"point {n}/{total} {key}")
            else:
                bar.advance(task)
                bar.console.print(f"{key}: {state}", markup=False, highlight=False, soft_wrap=True)

        yield on_point


def print_results(kind: str, fmt: str, results: list[Kept]) -> list[Unwritten]:
    """Each result, then where it was written; returns the files that could not be (see `finish`)."""
    lost = []
    for kept in results:
        typer.echo(render(kind, fmt, kept.result))
        lost += written("result", kept.path, kept.unwritten)
    return lost


def written(what: str, path: str | None, unwritten: Unwritten | None) -> list[Unwritten]:
    """`WHAT written to PATH` on stderr; or, for a file that could not be written, [unwritten] for `finish`."""
    if unwritten is not None:
        return [unwritten]
    if path:
        typer.echo(f"{what} written to {path}", err=True)
    return []


def write_file(what: str, path: str | None, write: Callable[[Path], None]) -> list[Unwritten]:
    """`write(path)` after the measurement (a plot, a ladder): written, or kept in the temp directory (`finish`
    says where); never an exception that would hide what the command printed."""
    return written(what, path, keep_file(path, write)) if path else []


def write_html(path: str | None, items: list[Item]) -> list[Unwritten]:
    """--html: the command's results as one self-contained page."""
    return write_file("HTML report", path, lambda p: htmlreport.write_items(items, p))


def finish(lost: list[Unwritten]) -> None:
    """The end of a command that measured: one `error: cannot write ...: saved to ... instead` line per file that
    could not be written, after everything printed, and exit status OUTPUT_LOST."""
    for u in lost:
        typer.echo(f"error: {u.line()}", err=True)
    if lost:
        raise typer.Exit(OUTPUT_LOST)
