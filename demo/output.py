"""How the demo speaks: steps, one-line explanations, timeline rows and tables.

The same scenario runs for people (`make demo`, colours on a terminal) and for pytest (plain
lines, also kept in `lines` so a test can read back what was said).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

BOLD, DIM, RED, GREEN, YELLOW, CYAN, RESET = (
    "\033[1m",
    "\033[2m",
    "\033[31m",
    "\033[32m",
    "\033[33m",
    "\033[36m",
    "\033[0m",
)

# Timeline columns: time, +seconds, job, kind, pod, verdict or state, action.
TIMELINE_HEADER = ("TIME", "T+", "JOB", "KIND", "POD", "WHAT", "ACTION")
TIMELINE_WIDTHS = (8, 6, 5, 7, 13, 36, 0)


@dataclass
class Narrator:
    """Writes the demo's lines; `color` only for a person at a terminal."""

    stream: TextIO = field(default_factory=lambda: sys.stdout)
    color: bool = False
    began: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_terminal(cls) -> Narrator:
        return cls(color=sys.stdout.isatty())

    def _paint(self, text: str, *styles: str) -> str:
        return "".join(styles) + text + RESET if self.color and styles else text

    def _write(self, plain: str, painted: str | None = None) -> None:
        with self._lock:
            self.lines.append(plain)
            print(painted if painted is not None else plain, file=self.stream, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def heading(self, text: str) -> None:
        self._write("", "")
        self._write(f"== {text}", self._paint(f"== {text}", BOLD))

    def step(self, text: str) -> None:
        """Progress of the set-up: what is being started or built."""
        line = f"[{self.elapsed():5.1f}s] {text}"
        self._write(line, self._paint(line, DIM))

    def inject(self, title: str, explanation: str) -> None:
        """A failure being injected, with its one-line explanation."""
        self._write("", "")
        line = f">> {title}: {explanation}"
        self._write(
            line, self._paint(">> ", RED, BOLD) + self._paint(title, BOLD) + ": " + explanation
        )

    def note(self, title: str, explanation: str) -> None:
        """A turn of the story that is not a failure."""
        self._write("", "")
        line = f"-- {title}: {explanation}"
        self._write(
            line, self._paint("-- ", GREEN, BOLD) + self._paint(title, BOLD) + ": " + explanation
        )

    def say(self, text: str) -> None:
        self._write(f"   {text}".rstrip())

    def ok(self, text: str) -> None:
        self._write(f"   {text}", "   " + self._paint(text, GREEN))

    def timeline_header(self) -> None:
        self._write(_columns(TIMELINE_HEADER), self._paint(_columns(TIMELINE_HEADER), DIM))

    def timeline(
        self, at: datetime, job: int | None, kind: str, pod: str, what: str, *, action: str = ""
    ) -> None:
        offset = f"{self.elapsed():.0f}s"
        row = (
            at.astimezone().strftime("%H:%M:%S"),
            offset,
            str(job) if job is not None else "-",
            kind or "-",
            pod or "-",
            what,
            action,
        )
        plain = _columns(row)
        style = YELLOW if action else CYAN if job is None else ""
        self._write(plain, self._paint(plain, style) if style else plain)

    def table(self, rows: Sequence[Sequence[str]]) -> None:
        """Rows (the first is the header) in aligned columns."""
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for index, row in enumerate(rows):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            line = "   " + line.rstrip()
            self._write(line, self._paint(line, DIM) if index == 0 else line)

    def block(self, text: str) -> None:
        """A command's output, indented."""
        for line in text.rstrip().splitlines():
            self._write(f"   {line}")


def _columns(cells: Sequence[str]) -> str:
    parts = [
        cell if width == 0 else cell[:width].ljust(width)
        for cell, width in zip(cells, TIMELINE_WIDTHS, strict=True)
    ]
    return ("   " + "  ".join(parts)).rstrip()
