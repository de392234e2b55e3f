"""`python -m offline_bench` and the `offline-bench` console script: the CLI, with Ctrl-C and SIGTERM honoured
from the first instant (a signal while its modules still import exits 130 too, without a traceback)."""

from __future__ import annotations

import importlib
import signal
import sys

INTERRUPTED = "interrupted (results already written are kept; a sweep resumes where it stopped)"


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # `timeout`, a scheduler's limit: unwinds like Ctrl-C
    try:
        cli = importlib.import_module("offline_bench.cli.main")  # here, so an interrupt meanwhile is caught
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
    cli.main()


if __name__ == "__main__":
    main()
