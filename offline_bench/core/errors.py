"""User-facing errors: one clear line naming the fix, no traceback."""

from __future__ import annotations

from pathlib import Path


class BenchError(Exception):
    """A problem with the user's input or environment; the CLI prints `error: <message>` and exits 2."""


def input_file(path: str, what: str, fix: str) -> Path:
    """An input file that exists and is not a directory, or one line naming the fix."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise BenchError(f"{what} '{path}' is a directory: {fix}")
    if not p.exists():
        raise BenchError(f"{what} '{path}' not found: {fix}")
    return p


class NotAResult(BenchError):
    """A file that is not the result asked for (unreadable, of another kind, or not whole). The message names the
    path; `reason` says why without it (what `report` shows beside a file it skips)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
