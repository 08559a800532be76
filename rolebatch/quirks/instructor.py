"""instructor 1.17: how rolebatch calls it, a memo for its async-validator
check, and quiet logging.

instructor checks the response model for async validators six times per call,
each time walking every attribute of every class in its MRO (~80 µs); at a
few hundred requests a second that is a tenth of our CPU.  The answer depends
only on the class, so a class that passed is not walked again.  With another
instructor layout the patch does nothing and everything still works, slower.
"""

from __future__ import annotations

import functools
import logging
import weakref
from typing import Any

from pydantic import BaseModel

from ..errors import UsageError

# instructor logs every failed API call at ERROR level; with no handler set up,
# Python would print each one to stderr.  Our summary reports them instead.
logging.getLogger("instructor").addHandler(logging.NullHandler())

try:  # instructor 1.17's layout; with another, the two helpers below do nothing
    from instructor.v2.core import patch as _instructor_patch
    from instructor.v2.validation import async_validators as _async_validators
except ImportError:  # pragma: no cover
    _instructor_patch = _async_validators = None  # type: ignore[assignment]


def remember_checked_models() -> None:
    """Check each response class once.  A class that fails is checked, and
    refused, every time."""
    if _async_validators is None:
        return
    check = _async_validators.reject_async_validators
    if getattr(check, "remembers", False):
        return
    passed: weakref.WeakSet[type] = weakref.WeakSet()

    @functools.wraps(check)
    def remembered(model: Any) -> None:
        if isinstance(model, type) and model in passed:
            return
        check(model)
        if isinstance(model, type):
            passed.add(model)

    remembered.remembers = True  # type: ignore[attr-defined]
    _async_validators.reject_async_validators = remembered
    if getattr(_instructor_patch, "reject_async_validators", None) is check:
        _instructor_patch.reject_async_validators = remembered


def patched(create: Any, mode: str, provider: str | None) -> Any:
    """instructor's ``create`` for ``mode`` over ``create``, for the provider
    instructor handles it as (``Provider.instructor_provider``; None:
    OpenAI's way): instructor 1.17 looks modes up per provider."""
    import instructor

    if provider is None:
        return instructor.patch(create=create, mode=instructor.Mode[mode.upper()])
    chosen = instructor.Provider[provider.upper()]
    return instructor.patch(create=create, mode=instructor.Mode[mode.upper()], provider=chosen)


@functools.cache
def wrapped(model: type[BaseModel]) -> type[BaseModel]:
    """The response model as instructor uses it, built once per class:
    instructor otherwise builds a new subclass of the model (and its schema)
    on every call, a fifth of its CPU time per request."""
    import instructor

    return instructor.openai_schema(model)


def version() -> str:
    """instructor's version: it spells the request from what it is given, so
    an answer kept for a request (``via.cached``) is kept under it."""
    import instructor

    return str(instructor.__version__)


def check_response_model(model: type[BaseModel], name: str) -> None:
    """Refuse, before anything is sent, a model instructor would refuse on every call."""
    if _async_validators is None:
        return
    try:
        _async_validators.reject_async_validators(model)
    except ValueError as exc:
        raise UsageError(f"--schema {name}: {exc}") from None


remember_checked_models()
