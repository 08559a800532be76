"""Every provider rolebatch knows, and what sets each apart: where
``provider/name`` model strings point, which key they use, which mode suits
them, and every way a provider's requests differ (the transport, the batch
API, the default ``max_tokens``, where the system prompt may go, instructor's
provider, prices).  Adding a provider is one entry here, and a transport or
batch module beside it if it speaks a protocol not yet here; nothing outside
``providers/`` asks a provider's name."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

# instructor's modes by our names (instructor.Mode[name.upper()]); plain names
# here so that the command line starts without importing instructor.
MODES = ("tools", "json", "json_schema", "md_json")


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str | None
    key_env: str | None
    mode: str  # the default --mode
    key_required: bool
    # The provider's id in genai-prices' price data (None: prices unknown).
    prices_id: str | None = None
    # Its tokens cost nothing (the embedded model).
    free: bool = False
    # The module of this package that sends its requests (``transport``):
    # openai_http (Chat Completions), anthropic (Messages), local (embedded).
    transport: str = "openai_http"
    # The module of this package that speaks its batch API at half price
    # (``batch_api``); None: it has none.
    batches: str | None = None
    # max_tokens sent when --max-tokens is not given (None: the server's own).
    default_max_tokens: int | None = None
    # Its API needs a user message: a prompt that is all system goes as one.
    system_as_user: bool = False
    # instructor's name for it where instructor handles it apart (its modes
    # are looked up per provider); None: instructor's OpenAI handling.
    instructor_provider: str | None = None
    # A server on the user's machine that works on a few requests at a time
    # and queues the rest: requests in flight start at what it can work on
    # (``slots_path``, or 1) and follow its queue (``pacing.queueing``).
    queues: bool = False
    # Where the server says how many requests it works on at once (llama.cpp's
    # /props, its total_slots), below the base URL's host.
    slots_path: str | None = None
    # In --mode json, the schema goes in the response_format too, as
    # {"type": "json_object", "schema": ...} (llama.cpp's servers constrain
    # the answer to it; without it they constrain to any JSON).
    schema_in_json_object: bool = False
    # It may say when its models shut down (GET /models/{model}: shutdown_date,
    # as OpenAI's does): asked once at the start of a run (``providers.models``).
    shutdowns: bool = True
    # The modes it takes (None: all of MODES).
    modes: tuple[str, ...] | None = None
    # Where its settings come from, for docs/providers.md.
    documented: str = ""
    # The variable its own SDK reads a base URL from (OPENAI_BASE_URL,
    # ANTHROPIC_BASE_URL): the only variable that may move its key elsewhere.
    url_env: str | None = None
    # How it caches a prompt's prefix, and how a request asks for it
    # (``via.request``): "key" (OpenAI's automatic cache, steered by a
    # ``prompt_cache_key``), "breakpoint" (Anthropic's: a ``cache_control``
    # mark ends the prefix to keep); None: not known, nothing is added.
    prompt_cache: str | None = None
    # It takes a ``seed`` parameter, and samples the same answer for the same
    # request and seed as best it can (``via.request.seed_of``).
    seed: bool = False
    # Its models' context, in tokens, where the provider fixes it (None: the
    # model's own, from the price data where it says: ``cost.prices``).
    context_tokens: int | None = None

    @property
    def batch_api(self) -> bool:
        return self.batches is not None


def _host(name: str, url: str, key: str, mode: str, prices: str, doc: str, **more: Any) -> Provider:
    """A hosted OpenAI-compatible API."""
    return Provider(name, url, key, mode, True, prices_id=prices, documented=doc, **more)


# The embedded model's context (providers.local loads it with this many).
LOCAL_CONTEXT_TOKENS = 2048

# Local servers: bounded answers (a small model rambling to the end of its
# context would hold a slot for minutes; "truncated" says when an answer needs
# more), and in flight only what the server works on.
LOCAL_SERVER: dict[str, Any] = {
    "default_max_tokens": 512,
    "queues": True,
    "shutdowns": False,
    "seed": True,
}

PROVIDERS = {
    p.name: p
    for p in (
        Provider(
            "openai",
            "https://api.openai.com/v1",
            "OPENAI_API_KEY",
            "tools",
            True,
            prices_id="openai",
            batches="openai_batches",
            url_env="OPENAI_BASE_URL",
            prompt_cache="key",
            seed=True,
        ),
        Provider(
            "anthropic",
            "https://api.anthropic.com",
            "ANTHROPIC_API_KEY",
            "tools",
            True,
            prices_id="anthropic",
            transport="anthropic",
            batches="anthropic_batches",
            # The Messages API needs max_tokens on every request.
            default_max_tokens=1024,
            system_as_user=True,
            instructor_provider="anthropic",
            modes=("tools", "json"),
            # Its model list has no shutdown dates (its deprecations page has).
            shutdowns=False,
            url_env="ANTHROPIC_BASE_URL",
            prompt_cache="breakpoint",
        ),
        _host(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
            "tools",
            "openrouter",
            "https://openrouter.ai/docs/quickstart",
            seed=True,
        ),
        _host(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "GEMINI_API_KEY",
            "tools",
            "google",
            "https://ai.google.dev/gemini-api/docs/openai",
        ),
        _host(
            "groq",
            "https://api.groq.com/openai/v1",
            "GROQ_API_KEY",
            "tools",
            "groq",
            "https://console.groq.com/docs/openai",
            seed=True,
        ),
        _host(
            "together",
            "https://api.together.ai/v1",
            "TOGETHER_API_KEY",
            # Only some of its models take tools or a response format.
            "md_json",
            "together",
            "https://docs.together.ai/docs/inference/openai-compatibility",
            seed=True,
        ),
        _host(
            "fireworks",
            "https://api.fireworks.ai/inference/v1",
            "FIREWORKS_API_KEY",
            "json",
            "fireworks",
            "https://docs.fireworks.ai/tools-sdks/openai-compatibility",
            seed=True,
        ),
        _host(
            "deepseek",
            "https://api.deepseek.com",
            "DEEPSEEK_API_KEY",
            "tools",
            "deepseek",
            "https://api-docs.deepseek.com/",
        ),
        _host(
            "mistral",
            "https://api.mistral.ai/v1",
            "MISTRAL_API_KEY",
            "tools",
            "mistral",
            "https://docs.mistral.ai/api/",
            prompt_cache="key",
        ),
        Provider("ollama", "http://localhost:11434/v1", None, "json_schema", False, **LOCAL_SERVER),
        Provider("vllm", "http://localhost:8000/v1", None, "json_schema", False, **LOCAL_SERVER),
        # llama.cpp's server and llama-cpp-python's: both take a json_object
        # with a schema; only the first takes json_schema, and tools only with
        # a chat template (--jinja): json is what works on both.
        Provider(
            "llamacpp",
            "http://localhost:8080/v1",
            None,
            "json",
            False,
            slots_path="/props",
            schema_in_json_object=True,
            **LOCAL_SERVER,
        ),
        # Any other OpenAI-compatible server: needs --base-url.
        Provider(
            "compat",
            None,
            "OPENAI_API_KEY",
            "json_schema",
            False,
            url_env="OPENAI_BASE_URL",
            seed=True,
        ),
        # The embedded offline model (providers.local); no server, no key.
        Provider(
            "local",
            None,
            None,
            "json_schema",
            False,
            free=True,
            transport="local",
            shutdowns=False,
            # A base model rambles to the end of its context without a bound.
            default_max_tokens=128,
            seed=True,
            context_tokens=LOCAL_CONTEXT_TOKENS,
        ),
    )
}
LOCAL_MODELS = ("gemma-3-270m",)


@dataclass(frozen=True)
class Endpoint:
    """A resolved model string: what to send, where, with which key and mode."""

    provider: Provider
    model: str
    base_url: str
    mode: str
    api_key: str = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"


def resolve(
    model: str,
    base_url: str | None,
    mode: str | None,
    api_key: str | None,
    *,
    need_key: bool = True,
) -> Endpoint:
    provider_name, sep, name = model.partition("/")
    if not sep or not provider_name or not name:
        raise UsageError(
            f"--model {model!r}: expected provider/name, e.g. openai/gpt-4o"
            f" (providers: {', '.join(PROVIDERS)})"
        )
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        raise UsageError(
            f"--model {model!r}: unknown provider {provider_name!r}"
            f" (known: {', '.join(PROVIDERS)}; for any OpenAI-compatible server use"
            " compat/<model> with --base-url)"
        )
    if provider.name == "local":
        return _resolve_local(provider, name, mode)
    # A key goes to its provider's own host unless the user named another for
    # this provider: --base-url (the command line or a settings file, which
    # says so at the start) or the provider's own variable, never another's.
    named = base_url or (os.environ.get(provider.url_env) if provider.url_env else None)
    url = named or provider.base_url
    if url is None:
        raise UsageError(f"--model {model!r} needs --base-url (or OPENAI_BASE_URL)")
    chosen_mode = mode or provider.mode
    allowed = provider.modes or MODES
    if chosen_mode not in allowed:
        raise UsageError(f"--mode {chosen_mode!r}: {provider.name} takes {', '.join(allowed)}")
    key = api_key or (os.environ.get(provider.key_env) if provider.key_env else None)
    # A custom base URL usually means a local server that takes any key.
    if not key and provider.key_required and not named and need_key:
        raise UsageError(
            f"{provider.key_env} is not set: export {provider.key_env}=... to use"
            f" {provider.name}, or pick a local model with --model"
        )
    return Endpoint(provider, name, url.rstrip("/"), chosen_mode, key or "not-needed")


def _resolve_local(provider: Provider, name: str, mode: str | None) -> Endpoint:
    if name not in LOCAL_MODELS:
        raise UsageError(
            f"--model local/{name}: no such local model (available: "
            + ", ".join(f"local/{m}" for m in LOCAL_MODELS)
            + ")"
        )
    if mode not in (None, "json_schema"):
        raise UsageError(f"--mode {mode}: the local model works with --mode json_schema only")
    return Endpoint(provider, name, "local", "json_schema", "")
