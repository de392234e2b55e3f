"""Capture the engine's log at the file-descriptor level, so lines written by its worker processes count too."""

from __future__ import annotations

import os
import sys
import threading
from typing import TextIO


class LogCapture:
    """Redirect fds 1 and 2 into a pipe while active; a thread keeps every line (and echoes it if asked).

    Child processes started inside the block (vLLM's EngineCore and workers) inherit the pipe, so their lines
    are captured as well. `console` is a handle on the original stderr for progress bars and messages.
    """

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.console: TextIO = sys.stderr
        self._saved: tuple[int, int] | None = None

    def __enter__(self) -> LogCapture:
        return self.start()

    def start(self) -> LogCapture:
        """Begin capturing (for an owner whose lifetime is not one `with` block, such as a started engine)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self.console = os.fdopen(os.dup(self._saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), daemon=True)
        self._thread.start()
        return self

    def _pump(self, read_fd: int) -> None:
        # Runs until every writer (children included) has closed the pipe.
        with os.fdopen(read_fd, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", errors="replace")
                with self._lock:
                    self._lines.append(line)
                if self.echo:
                    try:
                        self.console.write(line)
                    except (ValueError, OSError):
                        pass

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drain(self, timeout_s: float) -> None:
        """Wait up to timeout_s for lines still in the pipe (a dying engine's last words)."""
        self._thread.join(timeout=timeout_s)

    def stop(self) -> None:
        """Give fds 1 and 2 back; safe to call once more."""
        if self._saved is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        os.close(self._saved[0])
        os.close(self._saved[1])
        self._saved = None
        # the pump ends when the engine processes exit; give it a moment for lines still in the pipe
        self._thread.join(timeout=0.2)

    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)
