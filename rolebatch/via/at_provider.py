"""What an output has at the provider, for an operator: ``rolebatch status``
lists its batches as the provider sees them now, ``rolebatch cancel`` stops
them.  Neither collects: the next run with --via batch does."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..providers.batch_api import BatchAPI, BatchInfo, open_batches
from ..providers.registry import resolve
from ..records.sidecar import read_sidecar
from .journal import Entry, Journal


def _api_for(output: Path) -> tuple[BatchAPI | None, Journal]:
    """The batch API an output's batches were created at, from its sidecar,
    and its journal (no API when nothing is at the provider)."""
    if not output.exists():
        raise UsageError(f"{output}: no such file")
    journal = Journal.load(output)
    if not journal.at_provider():
        return None, journal
    meta = read_sidecar(output)
    if meta is None:
        raise UsageError(f"{output}: not a rolebatch output (no readable sidecar)")
    config = meta["config"]
    endpoint = resolve(config["model"], config["base_url"], config["mode"], None)
    return open_batches(endpoint, 60.0), journal


def no_batches(output: Path) -> str:
    """What to say of an output with nothing at the provider."""
    if not Journal(output).directory.exists():
        return f"{output}: no batches: its answers were bought live (--via live)"
    return f"{output}: no batches at the provider"


async def out_at_provider(output: Path) -> list[tuple[Entry, BatchInfo | None]]:
    """Every batch of ``output`` that is not collected, as the provider sees it
    now (None: created just before a crash, and not found at the provider)."""
    api, journal = _api_for(output)
    found: list[tuple[Entry, BatchInfo | None]] = []
    if api is None:
        return found
    try:
        for entry in journal.at_provider():
            if entry.batch_id is not None:
                found.append((entry, await api.get(entry.batch_id)))
            else:
                found.append(
                    (entry, await api.find(journal.submission(entry), journal.known_batches()))
                )
    finally:
        await api.aclose()
    return found


async def cancel_out(output: Path) -> list[tuple[Entry, BatchInfo | None]]:
    """Cancel every batch of ``output`` still at the provider.  Their answers
    so far are collected by the next run; the rest is still to do."""
    api, journal = _api_for(output)
    cancelled: list[tuple[Entry, BatchInfo | None]] = []
    if api is None:
        return cancelled
    try:
        for entry in journal.at_provider():
            batch_id = entry.batch_id
            if batch_id is None:
                info = await api.find(journal.submission(entry), journal.known_batches())
                batch_id = info.id if info is not None else None
            cancelled.append((entry, await api.cancel(batch_id) if batch_id else None))
    finally:
        await api.aclose()
    return cancelled
