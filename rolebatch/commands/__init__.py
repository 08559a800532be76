"""One module per command; ``rolebatch.cli`` gathers them and maps errors to exit codes.

Commands: ``run`` buys the answers for a job (through ``pipeline``);
``estimate`` says what that would cost and take, sending nothing; ``status``
and ``cancel`` show and stop an output's batches at the provider.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def heavy_imports() -> Iterator[None]:
    """Import without the cyclic garbage collector: importing openai and
    instructor builds hundreds of thousands of objects, none of them garbage,
    and the collector would walk them dozens of times (a quarter of the import
    time).  What they built is then frozen out of later collections too."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
