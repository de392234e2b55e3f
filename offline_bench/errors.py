"""User-facing errors: one clear line naming the fix, no traceback."""


class BenchError(Exception):
    """A problem with the user's input or environment; the CLI prints `error: <message>` and exits 2."""
