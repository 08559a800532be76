"""The command line: one module per command, over the library; ``cli``
gathers them; ``outcome`` ends every command that runs a run.

    run       rolebatch run: buy the answers for a job (``pipeline``)
    estimate  rolebatch estimate: what that would cost and take (``forecast``)
    batches   rolebatch status and cancel: an output's batches at the provider
    merge     rolebatch merge: shard outputs joined in input order
    report    rolebatch report: an output's lines compared per group
    judge     rolebatch judge: an earlier run's answers graded by a judge model
    panel     rolebatch panel: a synthesizer answering from every role's answer
    models    rolebatch models: a provider's models and their shutdown dates
    search    rolebatch search: which role, if any, helps on questions it never saw
    options   the options run and estimate share
    outcome   how a run ends: exit code, message, --summary-json, in one place
    derived   what judge and panel share: the earlier run's config and model
    settings  settings beside the job (``jobs/<stem>.toml``), read as defaults
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
