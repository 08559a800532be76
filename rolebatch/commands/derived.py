"""What the commands that run over an earlier run's output share (``judge``,
``panel``): the earlier run's configuration, its model as the default, where
their records go, and the end: an estimate or the run."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import RunConfig
from ..errors import UsageError
from ..records.sidecar import read_sidecar
from . import heavy_imports
from .estimate import show
from .options import run_config
from .outcome import Invocation
from .run import execute

T = TypeVar("T")


def earlier_config(output: Path) -> dict[str, Any]:
    """The configuration ``output`` was run with; UsageError when it is not
    an output of rolebatch run."""
    meta = read_sidecar(output) if output.is_file() else None
    if meta is None:
        raise UsageError(f"{output}: not an output of rolebatch run (no sidecar beside it)")
    return meta["config"]


def records_path(output: Path | None, stem: str) -> Path:
    """Where the records of a judge's or a panel's run go: beside its output
    (``-o``, or ``out/<stem>.jsonl``), as ``<output stem>.records.jsonl``.  The
    run's own output then takes its name from them (see ``output_stem``)."""
    return (output or Path("out") / f"{stem}.jsonl").with_suffix(".records.jsonl")


def derived_run(
    output: Path | None,
    stem: str,
    options: dict[str, Any],
    make: Callable[[Path], T],
    estimate: bool,
) -> tuple[RunConfig, T]:
    """The run over records that ``make`` writes: beside the output
    (``records_path``), or for an estimate, which writes nothing, in a
    folder of its own that is gone when the estimate is done (the output
    it reads is the one a run would write)."""
    records = records_path(output, stem)
    if not estimate:
        return run_config(records, output, options), make(records)
    real = run_config(records, output, dict(options)).output_path()
    scratch = tempfile.mkdtemp(prefix="rolebatch-estimate-")
    click.get_current_context().call_on_close(lambda: shutil.rmtree(scratch, True))
    made = make(Path(scratch) / records.name)
    return run_config(Path(scratch) / records.name, real, options), made


def inherit_model(before: dict[str, Any], options: dict[str, Any]) -> None:
    """The earlier run's model (and its base URL) unless the command line,
    the environment or the settings give one."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("model") == click.core.ParameterSource.DEFAULT:
        options["model"] = before.get("model", options["model"])
        if ctx.get_parameter_source("base_url") == click.core.ParameterSource.DEFAULT:
            options["base_url"] = before.get("base_url")


def estimate_or_run(
    config: RunConfig,
    estimate: bool,
    notes: list[str],
    invocation: Invocation,
    earlier: Path | None = None,
    as_json: bool = False,
) -> int:
    """The estimate (of the run over ``earlier``, the output read), or the run."""
    if estimate:
        with heavy_imports():
            from ..forecast import forecast

        result = forecast(config)
        if earlier is not None:  # not the scratch records it was made from
            result.job = earlier
        show(result, as_json, notes)
        return 0
    return execute(config, invocation, notes)
