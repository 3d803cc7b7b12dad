"""A one-line progress bar on stderr while a benchmark runs (only when stderr is a terminal)."""

from __future__ import annotations

import shutil
import sys
import time


class Progress:
    """``update(label)`` before each of ``total`` items; ``close()`` clears the line."""

    WIDTH = 24

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total = max(1, total)
        self.done = 0
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()

    def update(self, label: str) -> None:
        """Show that item ``done + 1`` of ``total`` (``label``) is starting."""
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            elapsed = time.perf_counter() - self.started
            line = f"bench [{bar}] {self.done + 1}/{self.total} {elapsed:5.0f}s  {label}"
            columns = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: columns - 1].ljust(columns - 1))
            self.stream.flush()
        self.done += 1

    def skip(self, count: int) -> None:
        """Count ``count`` items as done without showing them (a runner that cannot run)."""
        self.done += count

    def close(self) -> None:
        if self.enabled:
            columns = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + " " * (columns - 1) + "\r")
            self.stream.flush()
