"""``rolebatch models``: a provider's models and when each shuts down, for a
user choosing what to move to (``providers.models``)."""

from __future__ import annotations

import json

import click

from ..errors import AuthError, EndpointError, RequestFailed, StatusError, UsageError
from ..providers.registry import PROVIDERS


@click.command()
@click.option(
    "--provider",
    default="openai",
    show_default=True,
    type=click.Choice(sorted(PROVIDERS)),
    help="Whose models to list.",
)
@click.option(
    "--base-url",
    help="The provider's API root, if not its usual one (its key is sent there).  [default:"
    " the provider's own; OPENAI_BASE_URL for openai and compat only]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
def models(provider: str, base_url: str | None, fmt: str) -> int:
    """List the models of a provider (GET /models) with their shutdown dates
    and the days left, soonest first, then those with none announced."""
    from ..providers.models import list_models, today
    from ..providers.registry import resolve
    from ..redaction import Redactor

    chosen = PROVIDERS[provider]
    if not chosen.shutdowns:
        raise UsageError(
            f"{provider}: its API does not say when its models shut down; see its own"
            " deprecations page"
        )
    endpoint = resolve(f"{provider}/-", base_url, None, None)  # the model is not asked for
    redact = Redactor(endpoint.api_key)
    try:
        found = list_models(endpoint)
    except StatusError as exc:
        cls = AuthError if exc.status in (401, 403) else EndpointError
        raise cls(redact(f"{endpoint.base_url}/models answered {exc}")) from None
    except RequestFailed as exc:
        raise EndpointError(redact(f"{endpoint.base_url}/models: {exc}")) from None
    now = today()
    found.sort(key=lambda m: (m.shutdown is None, m.shutdown or now, m.id))
    rows = [
        {
            "model": f"{provider}/{m.id}",
            "shutdown_date": m.shutdown.isoformat() if m.shutdown else None,
            "days_left": (m.shutdown - now).days if m.shutdown else None,
        }
        for m in found
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return 0
    width = max([len("model"), *(len(r["model"]) for r in rows)])
    click.echo(f"{'model':<{width}}  shutdown    days left")
    for r in rows:
        if r["shutdown_date"] is None:
            click.echo(f"{r['model']:<{width}}  -           -")
            continue
        left = r["days_left"]
        shown = f"{left}" if left >= 0 else f"shut down {-left} days ago"
        click.echo(f"{r['model']:<{width}}  {r['shutdown_date']}  {shown}")
    dated = sum(1 for r in rows if r["shutdown_date"])
    click.echo(f"{len(rows):,} models, {dated:,} with a shutdown date announced", err=True)
    return 0
