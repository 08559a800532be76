"""The price of a model's tokens, and what a request's usage costs at it.

Prices come from, in order: ``--price IN/OUT[/CACHED]`` (dollars per million
input / output / cached input tokens), the embedded model (free), or the
price data that ships with the ``genai-prices`` package.  It is never fetched:
we read the package's bundled snapshot and never start its updater.  The batch
APIs of OpenAI and Anthropic charge half the live price (their pricing pages;
genai-prices carries those rates as a ``processing: batch`` variant where it
has them, and half the live rate is used where it does not).

The rates are read out of genai-prices once per run and the sums done here:
its own ``calc_price`` takes ~100 µs a call, a tenth of a request's CPU.
Tiered rates follow its rule: once a request's prompt is over a tier's start,
all of its tokens pay that tier's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import UsageError
from ..providers.registry import Endpoint

MILLION = Decimal(1_000_000)
BATCH_DISCOUNT = Decimal("0.5")


@dataclass(frozen=True)
class Rate:
    """Dollars per million tokens, raised to a tier's price once a request's
    prompt is over the tier's start."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def at(self, prompt_tokens: int) -> Decimal:
        for start, price in reversed(self.tiers):
            if prompt_tokens > start:
                return price
        return self.base

    def times(self, factor: Decimal) -> Rate:
        return Rate(self.base * factor, tuple((s, p * factor) for s, p in self.tiers))


@dataclass(frozen=True)
class Price:
    """A model's rates, and where the figures come from."""

    source: str
    input: Rate
    output: Rate
    cached_input: Rate
    # Prompt tokens written to the provider's cache (Anthropic: 1.25x input;
    # None: at the input rate, as OpenAI's automatic cache is).
    cache_write: Rate | None = None

    def cost(self, prompt: int, completion: int, cached: int = 0, written: int = 0) -> Decimal:
        """What a request that used these tokens costs (``cached`` of its prompt
        tokens read from the provider's cache, ``written`` written to it)."""
        cached = min(cached, prompt)
        written = min(written, prompt - cached)
        write = self.cache_write or self.input
        return (
            (prompt - cached - written) * self.input.at(prompt)
            + cached * self.cached_input.at(prompt)
            + written * write.at(prompt)
            + completion * self.output.at(prompt)
        ) / MILLION

    def cache_saving(self, prompt: int, cached: int, written: int) -> Decimal:
        """What the provider's prompt cache saved on a request against no
        cache at all: its reads' discount less its writes' premium."""
        write = self.cache_write or self.input
        rate = self.input.at(prompt)
        return (
            cached * (rate - self.cached_input.at(prompt)) - written * (write.at(prompt) - rate)
        ) / MILLION

    def estimate(
        self, prompt: float, completion: float, cached: float = 0, written: float = 0
    ) -> Decimal:
        """The cost of a guess at a request's tokens, for reservations and the estimate."""
        return self.cost(round(prompt), round(completion), round(cached), round(written))

    def halved(self) -> Price:
        return Price(
            self.source + ", half for the batch API",
            self.input.times(BATCH_DISCOUNT),
            self.output.times(BATCH_DISCOUNT),
            self.cached_input.times(BATCH_DISCOUNT),
            None if self.cache_write is None else self.cache_write.times(BATCH_DISCOUNT),
        )

    def describe(self) -> str:
        tiers = " (more over a prompt size)" if self.input.tiers or self.output.tiers else ""
        return (
            f"${self.input.base:g} / ${self.output.base:g} per million input / output"
            f" tokens{tiers}, from {self.source}"
        )


def _flat(value: Decimal) -> Rate:
    return Rate(value)


FREE = Price("the embedded model, which runs here", _flat(Decimal(0)), *[_flat(Decimal(0))] * 2)


def parse_price(text: str) -> Price:
    """``--price IN/OUT`` or ``IN/OUT/CACHED``, dollars per million tokens."""
    try:
        values = [Decimal(part.strip().lstrip("$")) for part in text.split("/")]
    except InvalidOperation:
        values = []
    if len(values) not in (2, 3) or any(not v.is_finite() or v < 0 for v in values):
        raise UsageError(
            f"--price {text!r}: expected IN/OUT (or IN/OUT/CACHED) in US dollars per million"
            " tokens, e.g. --price 2.5/10"
        )
    cached = values[2] if len(values) == 3 else values[0]
    return Price("--price", _flat(values[0]), _flat(values[1]), _flat(cached))


@dataclass(frozen=True)
class Prices:
    """A run's prices, live and through the provider's batch API (None: unknown)."""

    live: Price | None
    batch: Price | None


def lookup(endpoint: Endpoint, override: str | None = None) -> Prices:
    """The prices of ``endpoint``'s model; None where nobody knows them."""
    batch_api = endpoint.provider.batch_api
    if override:
        price = parse_price(override)
        return Prices(price, price.halved() if batch_api else None)
    if endpoint.provider.free:
        return Prices(FREE, None)
    if endpoint.provider.prices_id is None:
        return Prices(None, None)
    return _from_genai_prices(endpoint.provider.prices_id, endpoint.model, batch_api)


def _from_genai_prices(provider_id: str, model: str, batch_api: bool) -> Prices:
    from datetime import datetime

    from genai_prices import __version__, data_snapshot

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return Prices(None, None)
    now = datetime.now(UTC)
    source = f"genai-prices {__version__}, {provider_id} {info.id}"
    live = _price(info.get_prices(now), source)
    if live is None or not batch_api:
        return Prices(live, None)
    if {"processing": "batch"} in [variant.when for variant in info.price_variants or ()]:
        batch = _price(info.get_prices(now, {"processing": "batch"}), source + " batch rate")
    else:
        batch = live.halved()
    return Prices(live, batch)


def _price(model_price: Any, source: str) -> Price | None:
    rates = model_price.__dict__
    if rates.get("input_mtok") is None or rates.get("output_mtok") is None:
        return None  # priced by something else (per request, per second): not ours to guess
    prompt = _rate(rates["input_mtok"])
    return Price(
        source,
        prompt,
        _rate(rates["output_mtok"]),
        _rate(rates["cache_read_mtok"]) if rates.get("cache_read_mtok") is not None else prompt,
        _rate(rates["cache_write_mtok"]) if rates.get("cache_write_mtok") is not None else None,
    )


def _rate(value: Any) -> Rate:
    tiers = getattr(value, "tiers", None)
    if tiers is None:
        return Rate(Decimal(value))
    return Rate(Decimal(value.base), tuple((t.start, Decimal(t.price)) for t in tiers))


def context_tokens(endpoint: Endpoint) -> int | None:
    """The tokens ``endpoint``'s model takes in one request, prompt and
    answer: the provider's where it fixes it, else what genai-prices' data
    says of the model (None: not known)."""
    if endpoint.provider.context_tokens is not None:
        return endpoint.provider.context_tokens
    if endpoint.provider.prices_id is None:
        return None
    from genai_prices import data_snapshot

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(
            endpoint.model, None, endpoint.provider.prices_id, None
        )
    except LookupError:
        return None
    window = getattr(info, "context_window", None)
    return window if isinstance(window, int) and window > 0 else None
