"""The options every command that plans a run takes (run, estimate), in one place."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..cache.store import parse_size
from ..config import DEFAULT_MODEL, RunConfig
from ..providers.registry import MODES
from ..records.shards import parse_shard
from ..tasks import TASKS
from ..tasks.layout import LAYOUTS


@dataclass(frozen=True)
class _Param:
    """One of the shared parameters: the keyword it arrives as, and the
    click decorator that declares it."""

    name: str
    declare: Callable[[Any], Any]


def _option(*decls: str, **attrs: Any) -> _Param:
    return _Param(click.Option(decls, **attrs).name or "", click.option(*decls, **attrs))


def _argument(*decls: str, **attrs: Any) -> _Param:
    return _Param(click.Argument(decls, **attrs).name or "", click.argument(*decls, **attrs))


class _Size(click.ParamType):
    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


# Every option of a command that plans a run, in the order --help shows them.
_PARAMS: list[_Param] = [
    _argument("job", type=click.Path(path_type=Path)),
    _option(
        "-o",
        "--output",
        type=click.Path(path_type=Path),
        help="Output JSONL file.  [default: out/<job stem>.jsonl]",
    ),
    _option(
        "--model",
        envvar="ROLEBATCH_MODEL",
        default=DEFAULT_MODEL,
        show_default=True,
        show_envvar=True,
        help="provider/name: openai/gpt-4o, openrouter/..., ollama/..., vllm/...,"
        " llamacpp/..., or compat/<name> with --base-url.",
    ),
    _option(
        "--base-url",
        help="Where the model's provider is reached, e.g. http://localhost:8000/v1 for"
        " compat/; the provider's key is sent there and never printed.  [default: the"
        " provider's own URL; OPENAI_BASE_URL for openai/ and compat/ only,"
        " ANTHROPIC_BASE_URL for anthropic/ only]",
    ),
    _option(
        "--mode",
        type=click.Choice(MODES),
        help="How instructor asks for structure.  [default: tools for openai and"
        " openrouter, json_schema for local servers]",
    ),
    _option(
        "--schema",
        envvar="ROLEBATCH_SCHEMA",
        show_envvar=True,
        help="Response model: module:Class or a JSON Schema file (.json)."
        "  [default: Response with one field, poem]",
    ),
    _option(
        "--task",
        type=click.Choice(TASKS),
        default=TASKS[0],
        show_default=True,
        help="What is asked: role (the role prompt, answered as --schema says), choice (a"
        ' multiple-choice question: records carry "options" and "expected"), answer (a short'
        ' answer: records carry "expected").',
    ),
    _option(
        "--layout",
        type=click.Choice(LAYOUTS),
        default="system",
        show_default=True,
        help="system: one system message '{role} {query}'; split: role as system"
        " message, query as user message; personas: several personas worked out in one"
        " call, the role as the lead, then the task's own answer.",
    ),
    _option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=8,
        show_default=True,
        envvar="ROLEBATCH_CONCURRENCY",
        show_envvar=True,
        help="Requests in flight at once.",
    ),
    _option("--max-tokens", type=click.IntRange(min=1), help="Completion token limit per request."),
    _option("--temperature", type=click.FloatRange(min=0.0), help="Sampling temperature."),
    _option(
        "--timeout",
        type=click.FloatRange(min=0.001),
        default=60.0,
        show_default=True,
        help="Seconds to wait for one request.",
    ),
    _option(
        "--max-reasks",
        type=click.IntRange(min=0),
        default=2,
        show_default=True,
        help="instructor re-asks after an answer fails validation.",
    ),
    _option(
        "--max-retries",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="HTTP retries per request on 408/409/5xx, timeouts and connection errors.",
    ),
    _option(
        "--max-rate-limit-retries",
        type=click.IntRange(min=0),
        default=20,
        show_default=True,
        help="Retries of one request after 429s; each first waits out the server's Retry-After.",
    ),
    _option(
        "--rpm",
        type=click.FloatRange(min=0.001),
        envvar="ROLEBATCH_RPM",
        show_envvar=True,
        help="Requests per minute to stay under.  [default: learned from x-ratelimit-*"
        " headers, else slowed down on 429s]",
    ),
    _option(
        "--tpm",
        type=click.FloatRange(min=0.001),
        envvar="ROLEBATCH_TPM",
        show_envvar=True,
        help="Tokens per minute (prompt + completion) to stay under.  [default: learned"
        " from x-ratelimit-* headers]",
    ),
    _option(
        "--itpm",
        type=click.FloatRange(min=0.001),
        envvar="ROLEBATCH_ITPM",
        show_envvar=True,
        help="Input (prompt) tokens per minute to stay under, where the provider limits"
        " them apart from output tokens (Anthropic).  [default: learned from headers]",
    ),
    _option(
        "--otpm",
        type=click.FloatRange(min=0.001),
        envvar="ROLEBATCH_OTPM",
        show_envvar=True,
        help="Output (completion) tokens per minute to stay under.  [default: learned"
        " from headers]",
    ),
    _option(
        "--fresh",
        is_flag=True,
        help="Start over: overwrite the output instead of resuming it.",
    ),
    _option(
        "--retry-failed/--no-retry-failed",
        default=True,
        show_default=True,
        help="On resume, run records whose earlier line is an error again.",
    ),
    _option(
        "--grace",
        type=click.FloatRange(min=0.0),
        default=5.0,
        show_default=True,
        help="Seconds calls in flight get to finish after SIGINT/SIGTERM (a second signal: none).",
    ),
    _option(
        "--via",
        type=click.Choice(["live", "batch"]),
        default="live",
        show_default=True,
        help="live: one request per attempt, now; batch: the provider's batch API"
        " (openai, anthropic), half the price, results within 24 hours.",
    ),
    _option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="--via batch: wait for every result; --no-wait submits, collects what has"
        " ended and exits 4 while batches are out (for cron).",
    ),
    _option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=50_000,
        show_default=True,
        help="--via batch: requests per batch, at most the provider's own limit (OpenAI:"
        " 50,000 requests, files kept under 190 MB; Anthropic: 100,000 requests, under"
        " 240 MB).",
    ),
    _option(
        "--poll-interval",
        type=click.FloatRange(min=0.01),
        default=60.0,
        show_default=True,
        help="--via batch: most seconds between checks on a batch (it starts at 2).",
    ),
    _option(
        "--reask",
        type=click.Choice(["batch", "live"]),
        default="batch",
        show_default=True,
        help="--via batch: where re-asks of answers that did not validate go: a follow-up"
        " batch, or live (faster, full price).",
    ),
    _option(
        "--price",
        metavar="IN/OUT",
        help="US dollars per million input / output tokens (IN/OUT/CACHED for cached"
        " input), over or in place of the known price, e.g. for a compat/ server.",
    ),
    _option(
        "--max-cost",
        type=click.FloatRange(min=0.0),
        metavar="USD",
        help="Most the output file may cost in all: its existing lines plus this run."
        " Stops before a request that would go over (exit 3).",
    ),
    _option(
        "--roles",
        type=click.Path(path_type=Path, dir_okay=False),
        help="A sweep: run every record under every role in this file (JSONL of"
        ' {"id": ..., "role": ...} or of profiles {"id": ..., "name": ..., "description":'
        ' ..., "catchphrases": [...], "examples": [{"user": ..., "assistant": ...}]}, or'
        " one role a line).  Output ids are <id>@<role id>; records must then have no role"
        " of their own.",
    ),
    _option(
        "--samples",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Ask each record (each record and role, with --roles) this many times; ids"
        " get #0..#K-1.",
    ),
    _option(
        "--shard",
        metavar="K/N",
        help="Run only shard K (0-based) of N: the records whose id hashes to it.  Writes"
        " out/<job stem>.shard-K-of-N.jsonl unless -o is given; `rolebatch merge` joins"
        " the shards.  K alone with --shard-count N, or from $JOB_COMPLETION_INDEX.",
    ),
    _option(
        "--shard-count",
        type=click.IntRange(min=1),
        metavar="N",
        help="How many shards; the index comes from --shard K or $JOB_COMPLETION_INDEX"
        " (Kubernetes Indexed Jobs).",
    ),
    _option(
        "--quota",
        metavar="URL",
        envvar="ROLEBATCH_QUOTA",
        show_envvar=True,
        help="Share the provider's limit with every process given the same URL:"
        " redis://host:6379/0 (also rediss://, valkey://).  The pace is held in Redis;"
        " the limits are --rpm/--tpm or learned from any process's answers.",
    ),
    _option(
        "--quota-key",
        metavar="NAME",
        help="The shared quota's name.  [default: provider, base URL and model: jobs on"
        " the same model share it]",
    ),
    _option(
        "--cache",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        envvar="ROLEBATCH_CACHE",
        show_envvar=True,
        help="Keep every valid answer in DIR and serve it again to any run that would"
        " send the same request (another output, shard or CI run): it is not bought"
        ' twice.  Its lines say "cached": true and cost 0.',
    ),
    _option(
        "--no-cache",
        is_flag=True,
        help="Neither read nor write the cache for this run (over --cache and ROLEBATCH_CACHE).",
    ),
    _option(
        "--cache-max-size",
        type=_Size(),
        default="1G",
        show_default=True,
        metavar="SIZE",
        help="Most the cache may hold (500M, 2G, ...); past it, the answers used least"
        " recently are dropped.",
    ),
]


def job_options(
    command: Callable[..., Any] | None = None,
    *,
    leave_out: tuple[str, ...] = (),
    said: dict[str, str] | None = None,
) -> Any:
    """JOB and the options that say how its answers are bought (less
    ``leave_out``, for a command that makes its own records: a judge);
    ``said``: the help of an option whose default is the command's own
    (a judge's output and model), in place of run's."""

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for param in reversed(_PARAMS):
            if param.name not in leave_out:
                command = param.declare(command)
        for param in getattr(command, "__click_params__", []):
            if said and param.name in said:
                param.help = said[param.name]
                param.show_default = False
                param.show_envvar = False
        return command

    return apply(command) if command is not None else apply


def run_config(job: Path, output: Path | None, options: dict[str, Any]) -> RunConfig:
    options.pop("config", None)  # read already: its values are the options' defaults
    shard = parse_shard(options.pop("shard"), options.pop("shard_count"), os.environ)
    if options.pop("no_cache", False):
        options["cache"] = None
    return RunConfig.of(job, output, shard=shard, **options)
