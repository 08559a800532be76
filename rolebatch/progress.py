"""Counting what a run has done, and showing it: a live bar on a terminal,
plain lines at intervals for cron and CI, and the summary at the end."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .exits import Exit, word_of
from .records.lines import Outcome

if TYPE_CHECKING:
    from .cost.prices import Price


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
    mended: int = 0  # ok answers whose JSON was mended (``via.verdict.repair``)
    errors: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    # Dollars spent by this run; None while the price is unknown.
    cost: Decimal | None = None
    cost_before: Decimal | None = None  # what the output's existing lines cost
    unpriced: str | None = None  # the model whose price nobody knows
    budget: Decimal | None = None  # --max-cost
    # --via batch: rounds of batches submitted, and requests that went again
    # by why ("expired": never run; "transient": a 5xx, 429 or timeout; "reask").
    batch_rounds: int = 0
    again: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # what the user should know of this run
    # --cache: answers served from it (nothing bought), what buying them again
    # would have cost at this run's price, and answers this run stored in it.
    cache: Path | None = None
    cached: int = 0
    saved: Decimal | None = None
    stored: int = 0
    rejected: int = 0  # stored answers today's response model rejected: bought again
    # The provider's prompt cache: prompt tokens read from it and written to
    # it, and what it saved at ``price`` (reads' discount less writes' premium).
    price: Price | None = None
    prompt_read: int = 0
    prompt_written: int = 0
    prompt_saving: Decimal = Decimal(0)
    shutdown: Any = None  # the model's coming shutdown (``providers.models.Shutdown``)
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.skipped + self.ok + self.failed

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, outcome: Outcome) -> None:
        if outcome.cached:  # nothing bought: no tokens, requests or dollars this run
            self.ok += 1
            self.cached += 1
            if outcome.saved is not None:
                self.saved = (self.saved or Decimal(0)) + outcome.saved
            return
        if outcome.ok:
            self.ok += 1
            self.mended += bool(outcome.repaired)
        else:
            self.failed += 1
            assert outcome.error is not None
            self.errors[outcome.error.kind] += 1
        self.attempts += outcome.attempts
        usage = outcome.usage
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        if usage.cached_tokens or usage.cache_write_tokens:
            self.prompt_read += usage.cached_tokens
            self.prompt_written += usage.cache_write_tokens
            if self.price is not None:
                self.prompt_saving += self.price.cache_saving(
                    usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens
                )
        if outcome.cost is not None:
            self.cost = (self.cost or Decimal(0)) + outcome.cost

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def cost_per_ok(self) -> Decimal | None:
        """What an ok record cost this run, failed attempts included."""
        bought = self.ok - self.cached
        if self.cost is None or not bought:
            return None
        return self.cost / bought

    def cost_to_finish(self) -> Decimal | None:
        """The rest at what records cost this run (None: nothing to go by)."""
        finished = self.ok + self.failed - self.cached
        if self.cost is None or not finished or not self.remaining:
            return None
        return self.cost / finished * self.remaining

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Summary:
    tally: Tally
    output: Path | None  # None: a run refused before its output was known
    wall_s: float

    @property
    def exit_code(self) -> int:
        return Exit.OK if self.tally.failed + self.tally.failed_before == 0 else Exit.FAILED

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
            notes = "".join(f"\n  {kind}: {text}" for kind, text in self._notes())
            return (
                f"rolebatch: all {t.total:,} records are already done{kept}; nothing to run."
                f"{notes}\n  output: {self.output}"
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
        if t.mended:
            lines.append(
                f"  mended: {t.mended:,} answers had raw control characters in JSON strings"
                ' (escaped, not asked again; their lines say "repaired")'
            )
        if t.batch_rounds:
            lines.append(f"  batches: {_rounds(t)}")
        if t.cache is not None:
            lines.append(f"  cache: {_cache_line(t)}")
        if _prompt_cached(t):
            lines.append(f"  prompt cache: {_prompt_cache_line(t)}")
        lines.append(
            f"  tokens: {t.tokens:,} (prompt {t.prompt_tokens:,},"
            f" completion {t.completion_tokens:,}); requests: {t.attempts:,}"
        )
        lines.extend(self._cost_lines())
        lines.extend(f"  {kind}: {text}" for kind, text in self._notes())
        lines.append(f"  output: {self.output}")
        return "\n".join(lines)

    def as_dict(self, exit_code: int, stopped: str | None = None) -> dict[str, Any]:
        """The summary for scripts (``--summary-json``)."""
        t = self.tally

        def usd(amount: Decimal | None) -> float | None:
            return None if amount is None else float(round(amount, 10))

        return {
            "exit_code": exit_code,
            "stopped": stopped,
            "output": None if self.output is None else str(self.output),
            "records": {
                "total": t.total,
                "ok": t.ok,
                "failed": t.failed,
                "already_done": t.skipped,
                "failed_before_kept": t.failed_before,
                "not_done": t.remaining,
            },
            "errors": dict(t.errors.most_common()),
            "answers_mended": t.mended,
            "tokens": {
                "prompt": t.prompt_tokens,
                "completion": t.completion_tokens,
                "total": t.tokens,
            },
            "requests": t.attempts,
            "cache": {
                "dir": None if t.cache is None else str(t.cache),
                "answers": t.cached,
                "saved_usd": usd(t.saved),
                "stored": t.stored,
                "rejected": t.rejected,
            },
            "prompt_cache": {
                "read_tokens": t.prompt_read,
                "written_tokens": t.prompt_written,
                "read_share": round(t.prompt_read / t.prompt_tokens, 4) if t.prompt_tokens else 0,
                "saving_usd": None if t.price is None else usd(t.prompt_saving),
            },
            "batch_rounds": t.batch_rounds,
            "requests_again": {reason: t.again[reason] for reason in AGAIN if t.again[reason]},
            "cost_usd": usd(t.cost),
            "cost_per_ok_usd": usd(t.cost_per_ok()),
            "output_cost_usd": usd(None if t.cost is None else t.cost + (t.cost_before or 0)),
            "cost_to_finish_usd": usd(t.cost_to_finish() if t.aborted is not None else None),
            "max_cost_usd": usd(t.budget),
            "price_unknown_for": t.unpriced,
            "wall_s": round(self.wall_s, 3),
            "notes": list(t.notes),
            "model_shutdown": t.shutdown.as_dict() if t.shutdown is not None else None,
        }

    def markdown(self, exit_code: int, message: str | None = None) -> str:
        """A short table for a CI step summary (``$GITHUB_STEP_SUMMARY``);
        ``message``: what stopped, refused or left it pending."""
        t = self.tally
        word = word_of(exit_code) or f"exit {exit_code}"
        status = {Exit.OK: "all ok", Exit.FAILED: "finished with failed records"}.get(
            exit_code, f"{word}: {message.splitlines()[0]}" if message else word
        )
        cost = (
            f"unknown for {t.unpriced}"
            if t.unpriced
            else ("–" if t.cost is None else dollars(t.cost))
        )
        rows = [
            ("records", f"{t.done:,} of {t.total:,} ({t.ok:,} ok, {t.failed:,} failed this run)"),
            ("errors", ", ".join(f"{k} {n:,}" for k, n in t.errors.most_common()) or "none"),
            ("tokens", f"{t.tokens:,} in {t.attempts:,} requests"),
            *([("batches", _rounds(t))] if t.batch_rounds else []),
            *([("cache", _cache_line(t))] if t.cache is not None else []),
            *(
                [("prompt cache", _prompt_cache_line(t))]
                if t.prompt_read + t.prompt_written
                else []
            ),
            ("cost", cost),
            ("time", _duration(self.wall_s)),
            *self._notes(),
            ("output", f"`{self.output}`" if self.output else "–"),
        ]
        body = "\n".join(f"| {name} | {value} |" for name, value in rows)
        return f"### rolebatch: {status}\n\n| | |\n|---|---|\n{body}\n"

    def _notes(self) -> list[tuple[str, str]]:
        """The warning of the model's shutdown, if one is near, and the notes."""
        shutdown = self.tally.shutdown
        warning = [("warning", shutdown.warning())] if shutdown is not None else []
        return [*warning, *(("note", note) for note in self.tally.notes)]

    def _cost_lines(self) -> list[str]:
        t = self.tally
        if t.unpriced:
            return [f"  cost unknown for {t.unpriced}: give --price IN/OUT (dollars per million)"]
        if t.cost is None:
            return []
        text = f"  cost: {dollars(t.cost)}"
        per_ok = t.cost_per_ok()
        if per_ok is not None:
            text += f" ({dollars(per_ok)} per ok record)"
        if t.cost_before:
            text += f"; the output in all: {dollars(t.cost_before + t.cost)}"
        if t.budget is not None:
            text += f" of --max-cost {dollars(t.budget)}"
        lines = [text]
        rest = t.cost_to_finish()
        if rest is not None and t.aborted is not None:
            lines.append(f"  to finish: about {dollars(rest)} for the {t.remaining:,} records left")
        return lines


# Why a batch request went again, in the order the summary names them.
AGAIN = {
    "expired": "not run (batch expired or cancelled)",
    "transient": "after a transient error",
    "reask": "re-asks",
}


def _cache_line(t: Tally) -> str:
    saved = f" ({dollars(t.saved)} saved)" if t.saved else ""
    rejected = (
        f"; {t.rejected:,} stored answers failed today's response model and were bought again"
        if t.rejected
        else ""
    )
    return (
        f"{t.cached:,} answers served, not bought{saved}; {t.stored:,} new answers stored"
        f" in {t.cache}{rejected}"
    )


def _prompt_cached(t: Tally) -> bool:
    return bool(t.prompt_read or t.prompt_written)


def _prompt_cache_line(t: Tally) -> str:
    share = t.prompt_read / t.prompt_tokens if t.prompt_tokens else 0.0
    written = f", {t.prompt_written:,} written to it" if t.prompt_written else ""
    saving = ""
    if t.price is not None:
        saving = f"; {'saved' if t.prompt_saving >= 0 else 'cost'} {dollars(abs(t.prompt_saving))}"
    return (
        f"{share:.0%} of prompt tokens read from the provider's cache ({t.prompt_read:,} of"
        f" {t.prompt_tokens:,}{written}){saving}"
    )


def _rounds(t: Tally) -> str:
    text = f"{t.batch_rounds:,} round{'s' if t.batch_rounds != 1 else ''}"
    again = [f"{t.again[reason]:,} {words}" for reason, words in AGAIN.items() if t.again[reason]]
    return text + (f"; went again: {', '.join(again)}" if again else "")


def dollars(amount: Decimal | float) -> str:
    """$1,234.56; under a dollar, four significant digits ($0.004750)."""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.{max(2, 3 - value.adjusted())}f}"


def _spent(t: Tally) -> str:
    return "" if t.cost is None else f" {dollars(t.cost)}"


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

    def batches(self, infos: list[tuple[Any, Any]]) -> None:
        """Each batch at the provider: (batch id, its BatchInfo)."""

    def finish(self, tally: Tally) -> None:
        pass

    def warn(self, text: str) -> None:
        """What the user must hear before the run, whatever the progress style."""
        print(f"rolebatch: warning: {text}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        """What the run does about something the user did (a signal), at once."""
        print(f"rolebatch: {text}", file=sys.stderr, flush=True)


def batch_line(batch_id: str, info: Any) -> str:
    age = _duration(max(0.0, time.time() - info.created_at)) if info.created_at else "?"
    return (
        f"batch {batch_id}: {info.status}, {info.done:,} of {info.total:,} done,"
        f" {info.failed:,} failed, {age} old"
    )


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
            f" | {rate:,.1f}/s | {tally.tokens:,} tok{_spent(tally)} | ETA {eta}   "
        )
        self.stream.flush()

    def batches(self, infos: list[tuple[Any, Any]]) -> None:
        self.stream.write("\r" + "; ".join(batch_line(b, info) for b, info in infos) + "   ")
        self.stream.flush()

    def finish(self, tally: Tally) -> None:
        self.update(tally)
        self.stream.write("\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self.stream.write(f"\nrolebatch: {text}\n")  # below the bar, which goes on
        self.stream.flush()


class LineReporter(Reporter):
    """One plain line at intervals, for logs (cron, CI)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 10.0):
        self.stream = stream or sys.stderr
        self.interval = interval

    def batches(self, infos: list[tuple[Any, Any]]) -> None:
        for batch_id, info in infos:
            self.stream.write(batch_line(batch_id, info) + "\n")
        self.stream.flush()

    def update(self, tally: Tally) -> None:
        rate, eta = _status(tally)
        percent = 100 * tally.done / tally.total if tally.total else 100.0
        self.stream.write(
            f"progress: {tally.done:,}/{tally.total:,} ({percent:.0f}%) ok={tally.ok:,}"
            f" failed={tally.failed:,} rate={rate:,.1f}/s tokens={tally.tokens:,}"
            + ("" if tally.cost is None else f" cost={dollars(tally.cost)}")
            + f" eta={eta}\n"
        )
        self.stream.flush()


def default_reporter(stream: TextIO | None = None, interval: float = 10.0) -> Reporter:
    stream = stream or sys.stderr
    return BarReporter(stream) if stream.isatty() else LineReporter(stream, interval)
