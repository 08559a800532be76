"""Counting what a run has done, and showing it: a live bar on a terminal,
plain lines at intervals for cron and CI, and the summary at the end."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .records.lines import Outcome


@dataclass
class Tally:
    total: int
    skipped: int = 0  # already done in the output file (resume)
    failed_before: int = 0  # error lines kept from before (--no-retry-failed)
    retried: int = 0  # error lines from before, run again
    repaired: bool = False  # a torn last line was cut off on resume
    aborted: Any = None  # the AbortError that stopped the run, if any
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.skipped + self.ok + self.failed

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, outcome: Outcome) -> None:
        if outcome.ok:
            self.ok += 1
        else:
            self.failed += 1
            assert outcome.error is not None
            self.errors[outcome.error.kind] += 1
        self.attempts += outcome.attempts
        self.prompt_tokens += outcome.usage.prompt_tokens
        self.completion_tokens += outcome.usage.completion_tokens

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Summary:
    tally: Tally
    output: Path
    wall_s: float

    @property
    def exit_code(self) -> int:
        return 0 if self.tally.failed + self.tally.failed_before == 0 else 1

    def text(self) -> str:
        t = self.tally
        if t.total == 0:
            return f"rolebatch: the job has no records; nothing to do.\n  output: {self.output}"
        if t.skipped == t.total:
            kept = (
                f" ({t.failed_before:,} of them failed, kept as they are)"
                if t.failed_before
                else ""
            )
            return (
                f"rolebatch: all {t.total:,} records are already done{kept}; nothing to run."
                f"\n  output: {self.output}"
            )
        lines = [
            f"rolebatch: {t.done:,} of {t.total:,} records in {_duration(self.wall_s)}:"
            f" {t.ok:,} ok, {t.failed:,} failed"
        ]
        if t.skipped:
            kept = f", {t.failed_before:,} of them kept as failed" if t.failed_before else ""
            lines.append(
                f"  resumed: {t.skipped:,} already in the output{kept};"
                f" {t.retried:,} failed before and run again"
            )
        if t.repaired:
            lines.append("  repaired: cut off a torn last line left by an earlier crash")
        if t.errors:
            kinds = ", ".join(f"{kind} {n:,}" for kind, n in t.errors.most_common())
            lines.append(f"  errors: {kinds}")
        lines.append(
            f"  tokens: {t.tokens:,} (prompt {t.prompt_tokens:,},"
            f" completion {t.completion_tokens:,}); requests: {t.attempts:,}"
        )
        lines.append(f"  output: {self.output}")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _status(t: Tally) -> tuple[float, str]:
    elapsed = t.elapsed()
    rate = (t.ok + t.failed) / elapsed if elapsed > 0 else 0.0
    eta = _duration((t.total - t.done) / rate) if rate > 0 else "?"
    return rate, eta


class Reporter:
    """Shows progress; ``interval`` is how often ``update`` is called."""

    interval = 1.0

    def update(self, tally: Tally) -> None:
        pass

    def finish(self, tally: Tally) -> None:
        pass


class BarReporter(Reporter):
    """A live bar on a terminal, redrawn in place."""

    interval = 0.2

    def __init__(self, stream: TextIO | None = None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width

    def update(self, tally: Tally) -> None:
        rate, eta = _status(tally)
        share = tally.done / tally.total if tally.total else 1.0
        filled = int(share * self.width)
        bar = "█" * filled + "░" * (self.width - filled)
        self.stream.write(
            f"\r{bar} {tally.done:,}/{tally.total:,} ok {tally.ok:,} failed {tally.failed:,}"
            f" | {rate:,.1f}/s | {tally.tokens:,} tok | ETA {eta}   "
        )
        self.stream.flush()

    def finish(self, tally: Tally) -> None:
        self.update(tally)
        self.stream.write("\n")
        self.stream.flush()


class LineReporter(Reporter):
    """One plain line at intervals, for logs (cron, CI)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 10.0):
        self.stream = stream or sys.stderr
        self.interval = interval

    def update(self, tally: Tally) -> None:
        rate, eta = _status(tally)
        percent = 100 * tally.done / tally.total if tally.total else 100.0
        self.stream.write(
            f"progress: {tally.done:,}/{tally.total:,} ({percent:.0f}%) ok={tally.ok:,}"
            f" failed={tally.failed:,} rate={rate:,.1f}/s tokens={tally.tokens:,} eta={eta}\n"
        )
        self.stream.flush()


def default_reporter(stream: TextIO | None = None, interval: float = 10.0) -> Reporter:
    stream = stream or sys.stderr
    return BarReporter(stream) if stream.isatty() else LineReporter(stream, interval)
