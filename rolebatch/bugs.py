"""What an unexpected error (a bug in rolebatch, not a failed request nor a
bad input) leaves: its traceback in a file of its own, with anything shaped
like an API key redacted, and one line that says where."""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from .redaction import Redactor


def traceback_dir() -> Path:
    """``$ROLEBATCH_CACHE_DIR/tracebacks``, else under ``$XDG_CACHE_HOME/rolebatch``,
    else ``~/.cache/rolebatch`` (where the embedded model is kept too)."""
    explicit = os.environ.get("ROLEBATCH_CACHE_DIR")
    if explicit:
        return Path(explicit) / "tracebacks"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rolebatch" / "tracebacks"


def keep(error: BaseException) -> Path | None:
    """Write ``error``'s traceback to a file of its own; its path (None: it
    could not be written, and the message says so)."""
    text = "".join(traceback.format_exception(error))
    redact = Redactor(*(os.environ.get(k) for k in os.environ if k.endswith("_API_KEY")))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = traceback_dir() / f"{stamp}-{os.getpid()}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(text), encoding="utf-8")
    except OSError:
        return None
    return path


def message(error: BaseException) -> str:
    """One line: what happened, that it is a bug, and where the traceback is."""
    where = keep(error)
    said = Redactor(*(os.environ.get(k) for k in os.environ if k.endswith("_API_KEY")))(
        f"{type(error).__name__}: {error}".splitlines()[0]
    )
    kept = f"the traceback is in {where}" if where else "the traceback could not be written"
    return (
        f"an unexpected error ({said}): a bug in rolebatch, or in code of yours it ran;"
        f" {kept}; please report it with that file"
    )
