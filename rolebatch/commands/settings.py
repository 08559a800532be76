"""Job settings kept beside the job: ``jobs/poems.toml`` for ``jobs/poems.jsonl``
(or ``--config FILE``) holds any of the command's long options, spelled as on
the command line (``base-url = "..."``; ``base_url`` too).

Precedence is click's own: the command line, then the environment, then the
file (click's ``default_map``), then the defaults.  The file is read with
``tomllib`` and checked before anything else: an unknown key or a value of
the wrong type is exit 2 naming the file and the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError

# Files a setting names that must exist before the run.
INPUT_PATHS = frozenset({"roles", "rubric", "against_output"})
# Not settings: where the job and its settings are.
NOT_SETTINGS = frozenset({"job", "config", "help"})
DEFAULT_MAP = click.core.ParameterSource.DEFAULT_MAP


class WithSettings(click.Command):
    """A command that reads its defaults from the job's settings file."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        path, explicit = self._settings_file(args)
        if path is not None:
            ctx.default_map = {**(ctx.default_map or {}), **self._read(ctx, path, explicit)}
        rest = super().parse_args(ctx, args)
        if path is not None and ctx.get_parameter_source("base_url") == DEFAULT_MAP:
            # A job folder may come from someone else: a host that will get the
            # user's key is never taken from it silently.
            click.echo(
                f"rolebatch: {path} sets base-url = {ctx.params['base_url']}: the model's"
                " API key is sent there",
                err=True,
            )
        return rest

    def _settings_file(self, args: list[str]) -> tuple[Path | None, bool]:
        """--config FILE, or the .toml beside JOB (found without parsing the rest)."""
        takes_value = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag and not param.count
            for name in param.opts
        }
        job = None
        items = iter(args)
        for item in items:
            if item == "--":
                job = job or next(items, None)
                break
            if item.startswith("--config="):
                return Path(item.partition("=")[2]), True
            if item == "--config":
                value = next(items, None)
                return (Path(value), True) if value else (None, False)
            if item in takes_value:
                next(items, None)
            elif not item.startswith("-") and job is None:
                job = item
        if job is None:
            return None, False
        beside = Path(job).with_suffix(".toml")
        return (beside, False) if beside.is_file() else (None, False)

    def _read(self, ctx: click.Context, path: Path, explicit: bool) -> dict[str, Any]:
        try:
            # A BOM (some Windows editors write one) is not TOML: read past it.
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise UsageError(f"--config {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML: {exc}") from None
        options = {
            param.name: param
            for param in self.params
            if isinstance(param, click.Option) and param.name not in NOT_SETTINGS
        }
        spelled = {
            opt.lstrip("-"): param.name
            for param in options.values()
            for opt in param.opts
            if opt.startswith("--")
        }
        defaults: dict[str, Any] = {}
        for key, value in data.items():
            name = spelled.get(key) or spelled.get(key.replace("_", "-"))
            if name is None:
                known = ", ".join(sorted(spelled))
                raise UsageError(f"{path}: unknown key {key!r} (settings are {known})")
            param = options[name]
            if isinstance(value, dict | list):
                raise UsageError(f"{path}: key {key!r}: expected a single value, got a table")
            if param.is_flag and not isinstance(value, bool):
                raise UsageError(f"{path}: key {key!r}: expected true or false, got {value!r}")
            if not param.is_flag and isinstance(value, bool):
                raise UsageError(f"{path}: key {key!r}: expected a value, not {value}")
            if isinstance(param.type, click.types.IntParamType) and not isinstance(value, int):
                raise UsageError(f"{path}: key {key!r}: expected an integer, got {value!r}")
            try:
                converted = param.type.convert(value, param, ctx)
            except click.BadParameter as exc:
                raise UsageError(f"{path}: key {key!r}: {exc.message}") from None
            if name in INPUT_PATHS:
                _check_input(path, key, Path(str(converted)))
            defaults[name] = converted
        return defaults


def _check_input(settings: Path, key: str, value: Path) -> None:
    """A file a settings file names must be there, read from where rolebatch
    runs (as on the command line); a missing one names the settings file."""
    if value.exists():
        return
    beside = settings.parent / value
    hint = (
        f"; {beside} exists: paths in a settings file are read from where rolebatch runs,"
        f" so write {str(beside)!r}"
        if not value.is_absolute() and beside.exists()
        else " (paths in a settings file are read from where rolebatch runs)"
    )
    raise UsageError(f"{settings}: key {key!r}: {value}: no such file{hint}")


def config_option(command: Any) -> Any:
    return click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Settings file (TOML, keys spelled as the long options).  [default: the"
        " job's .toml beside it, e.g. jobs/poems.toml, when there is one]",
    )(command)
