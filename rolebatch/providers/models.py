"""When a provider's models shut down: what ``GET /models`` says.

OpenAI's API (and a compatible host that copies it) gives every model an
optional ``shutdown_date`` ("YYYY-MM-DD", or null while none is announced),
on the list and on ``GET /models/{model}``.  A run, and ``estimate``, look
its model up once before anything is bought (``shutdown_of``: never fatal, a
provider without the endpoint or any error says nothing); ``notice`` turns
the date into what the run does: nothing beyond ``WARN_DAYS``, a warning
inside them, a refusal once the date is past.  ``rolebatch models`` lists
them all (``list_models``).  Only providers whose ``Provider.shutdowns``
says so are asked, with a plain GET (``_get``), whose errors become ours
here.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import ConnectionFailure, RequestFailed, StatusError, TimedOut
from .registry import Endpoint

# A shutdown this close is said at the start of a run and in its summary.
WARN_DAYS = 90
LOOKUP_TIMEOUT = 5.0


@dataclass(frozen=True)
class ModelInfo:
    id: str
    shutdown: dt.date | None  # None: none announced
    owned_by: str | None = None


@dataclass(frozen=True)
class Shutdown:
    """A model's shutdown date, seen from ``today``."""

    label: str  # provider/model
    on: dt.date
    today: dt.date

    @property
    def days_left(self) -> int:
        return (self.on - self.today).days

    @property
    def past(self) -> bool:
        return self.days_left < 0

    def warning(self) -> str:
        when = "today" if self.days_left == 0 else f"in {self.days_left} days"
        return (
            f"{self.label} shuts down on {self.on.isoformat()} ({when}, says the provider's"
            " model list): move to another model before then (`rolebatch models` lists"
            " them with their dates)"
        )

    def refusal(self) -> str:
        return (
            f"{self.label} was shut down on {self.on.isoformat()} (the provider's model list"
            " says so): nothing was sent. Choose another model (`rolebatch models` lists"
            " them with their dates)."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.label,
            "shutdown_date": self.on.isoformat(),
            "days_left": self.days_left,
        }


def notice(label: str, shutdown: dt.date | None, today: dt.date) -> Shutdown | None:
    """What a run says of its model's ``shutdown`` date: None when there is
    none or it is more than WARN_DAYS away."""
    if shutdown is None or (shutdown - today).days > WARN_DAYS:
        return None
    return Shutdown(label, shutdown, today)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def shutdown_notice(endpoint: Endpoint) -> Shutdown | None:
    """The notice for ``endpoint``'s model today (None: nothing to say)."""
    return notice(endpoint.label, shutdown_of(endpoint), today())


def shutdown_of(endpoint: Endpoint) -> dt.date | None:
    """The model's shutdown date as its provider announces it; None when none
    is announced, the provider does not say, or the look-up failed."""
    if not endpoint.provider.shutdowns:
        return None
    try:
        found = _get(endpoint, f"/models/{quote(endpoint.model, safe='')}", LOOKUP_TIMEOUT)
    except RequestFailed:
        return None
    return _date(found.get("shutdown_date")) if isinstance(found, dict) else None


def list_models(endpoint: Endpoint, timeout: float = 30.0) -> list[ModelInfo]:
    """Every model the provider lists, by id.  Raises RequestFailed."""
    found = _get(endpoint, "/models", timeout)
    data = found.get("data") if isinstance(found, dict) else None
    if not isinstance(data, list):
        raise RequestFailed("the model list could not be read: no data in the answer")
    models = [
        ModelInfo(str(entry["id"]), _date(entry.get("shutdown_date")), entry.get("owned_by"))
        for entry in data
        if isinstance(entry, dict) and entry.get("id")
    ]
    return sorted(models, key=lambda m: m.id)


def _get(endpoint: Endpoint, path: str, timeout: float) -> Any:
    """GET ``path`` below the endpoint's base URL, as JSON, with the key as
    the SDK sends it.  The standard library's client: the SDK's ``models``
    resource imports all of its resources first (0.6 s), httpx's transport
    is not otherwise loaded by a run on asyncio (0.15 s); this costs neither."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        endpoint.base_url + path,
        headers={"Authorization": f"Bearer {endpoint.api_key}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw, headers = answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        status, raw, headers = exc.code, exc.read(), dict(exc.headers or {})
    except TimeoutError as exc:
        raise TimedOut(str(exc) or "no answer in time") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConnectionFailure(str(reason) or type(exc).__name__) from None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if status != 200:
        error = body.get("error") if isinstance(body, dict) else None
        said = error.get("message") if isinstance(error, dict) else None
        raise StatusError(status, said or "error", headers, body)
    if body is None:
        raise RequestFailed("the answer was not JSON")
    return body


def _date(value: Any) -> dt.date | None:
    """A "YYYY-MM-DD" (or a Unix time, as some hosts give) as a date; None otherwise."""
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return dt.datetime.fromtimestamp(value, dt.UTC).date()
    return None
