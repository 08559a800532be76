"""Scorers: what one output line scores, as a number (None: it cannot be
scored, e.g. no ``expected``).  Pure functions of the line.

    choice            1 when the chosen option is the expected one, else 0
    exact             1 when the answer equals an expected one, case,
                      white space and final punctuation aside
    includes          1 when the answer contains an expected one (so aside)
    regex:PATTERN     1 when the answer matches PATTERN
    number[:TOL]      1 when the first number in the answer is within TOL
                      (default 0) of the expected number
    field:NAME        the response's numeric field NAME as it is (a judge's score)
    rouge-l:FIELD     ROUGE-L F-measure of the response's text FIELD against the
                      line's expected text (the best of a list), by Google's
                      rouge-score: its tokenizer (lower case, runs of a-z and
                      0-9), Porter stemming (:nostem after FIELD: none);
                      rouge-1:FIELD and rouge-2:FIELD the same, by unigrams
                      and bigrams
    python:MOD:FUNC   your own: FUNC(line) -> a number, or None to leave it out

The answer is the response's ``answer`` field, or its only string field.
"""

from __future__ import annotations

import importlib
import math
import re
import sys
from collections.abc import Callable
from typing import Any

from ..errors import UsageError

Scorer = Callable[[dict[str, Any]], float | None]
NAMES = (
    "choice",
    "exact",
    "includes",
    "regex:PATTERN",
    "number[:TOL]",
    "field:NAME",
    "rouge-l:FIELD",
    "rouge-1:FIELD",
    "rouge-2:FIELD",
)
# rouge-score's names of the measures.
ROUGE = {"rouge-1": "rouge1", "rouge-2": "rouge2", "rouge-l": "rougeL"}
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?")
_FINAL = ".,;:!?\"'"


def normalized(text: str) -> str:
    """Case, runs of white space and final punctuation set aside."""
    return " ".join(text.split()).casefold().rstrip(_FINAL).strip()


def answer_text(line: dict[str, Any]) -> str | None:
    response = line.get("response")
    if not isinstance(response, dict):
        return None
    if isinstance(response.get("answer"), str):
        return response["answer"]
    strings = [value for value in response.values() if isinstance(value, str)]
    return strings[0] if len(strings) == 1 else None


def _expected_texts(line: dict[str, Any]) -> list[str] | None:
    expected = line.get("expected")
    if isinstance(expected, str):
        return [expected]
    if isinstance(expected, list) and all(isinstance(e, str) for e in expected):
        return expected
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        return [str(expected)]
    return None


def choice(line: dict[str, Any]) -> float | None:
    response = line.get("response") or {}
    options = line.get("options")
    expected = line.get("expected")
    chosen = response.get("option") if isinstance(response, dict) else None
    if not isinstance(chosen, int) or isinstance(expected, bool):
        return None
    if isinstance(expected, int):
        return float(chosen == expected)
    if isinstance(expected, str) and isinstance(options, list):
        texts = [o.strip() for o in options]
        if expected.strip() in texts:
            return float(chosen == texts.index(expected.strip()) + 1)
    return None


def exact(line: dict[str, Any]) -> float | None:
    answer, expected = answer_text(line), _expected_texts(line)
    if answer is None or expected is None:
        return None
    return float(normalized(answer) in {normalized(e) for e in expected})


def includes(line: dict[str, Any]) -> float | None:
    answer, expected = answer_text(line), _expected_texts(line)
    if answer is None or expected is None:
        return None
    return float(any(normalized(e) in normalized(answer) for e in expected))


def _regex(pattern: str) -> Scorer:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--score regex:{pattern}: not a regular expression ({exc})") from None

    def score(line: dict[str, Any]) -> float | None:
        answer = answer_text(line)
        return None if answer is None else float(compiled.search(answer) is not None)

    return score


def _first_number(text: str) -> float | None:
    match = _NUMBER.search(text)
    return None if match is None else float(match.group().replace(",", "."))


def _number(tolerance: float) -> Scorer:
    def score(line: dict[str, Any]) -> float | None:
        expected = line.get("expected")
        if isinstance(expected, str):
            expected = _first_number(expected)
        if not isinstance(expected, int | float) or isinstance(expected, bool):
            return None
        response = line.get("response") or {}
        numbers = [v for v in response.values() if isinstance(v, int | float)]
        text = answer_text(line)
        got = _first_number(text) if text is not None else (numbers[0] if numbers else None)
        if got is None:
            return 0.0  # answered, with no number in it: wrong
        return float(abs(got - expected) <= tolerance + 1e-12)

    return score


def _field(name: str) -> Scorer:
    def score(line: dict[str, Any]) -> float | None:
        response = line.get("response")
        value = response.get(name) if isinstance(response, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None

    return score


def _python(spec: str) -> Scorer:
    module_name, _, function = spec.partition(":")
    if not module_name or not function:
        raise UsageError(f"--score python:{spec}: expected python:MODULE:FUNCTION")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # a module beside the job, as with --schema
    try:
        found = getattr(importlib.import_module(module_name), function, None)
    except ImportError as exc:
        raise UsageError(f"--score python:{spec}: cannot import {module_name!r}: {exc}") from None
    if not callable(found):
        raise UsageError(f"--score python:{spec}: {module_name!r} has no function {function!r}")

    def score(line: dict[str, Any]) -> float | None:
        value = found(line)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"--score python:{spec} returned {value!r}; expected a number")
        # NaN or infinity is no score: the line is unscored (and counted), as field: does.
        return float(value) if math.isfinite(value) else None

    return score


def _rouge(kind: str, argument: str) -> Scorer:
    """ROUGE's F-measure of the response's text ``FIELD`` against the
    expected text, the best of several (rouge-score's ``score_multi``)."""
    field, _, option = argument.partition(":")
    if not field or option not in ("", "nostem"):
        raise UsageError(f"--score {kind}:{argument}: expected {kind}:FIELD or {kind}:FIELD:nostem")
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise UsageError(
            f"--score {kind}: needs Google's rouge-score package: pip install 'rolebatch[rouge]'"
        ) from None
    measure = ROUGE[kind]
    scoring = rouge_scorer.RougeScorer([measure], use_stemmer=option != "nostem")

    def score(line: dict[str, Any]) -> float | None:
        response = line.get("response")
        text = response.get(field) if isinstance(response, dict) else None
        references = _expected_texts(line)
        if not isinstance(text, str) or not references:
            return None
        return float(scoring.score_multi(references, text)[measure].fmeasure)

    return score


def scorer(spec: str) -> Scorer:
    """The scorer ``spec`` names (``--score``)."""
    kind, _, argument = spec.partition(":")
    if kind == "choice" and not argument:
        return choice
    if kind == "exact" and not argument:
        return exact
    if kind == "includes" and not argument:
        return includes
    if kind == "regex" and argument:
        return _regex(argument)
    if kind == "number":
        try:
            return _number(float(argument) if argument else 0.0)
        except ValueError:
            raise UsageError(f"--score {spec}: the tolerance must be a number") from None
    if kind == "field" and argument:
        return _field(argument)
    if kind == "python" and argument:
        return _python(argument)
    if kind in ROUGE and argument:
        return _rouge(kind, argument)
    raise UsageError(
        f"--score {spec!r}: expected one of {', '.join(NAMES)}, python:MODULE:FUNCTION"
    )


def natural(line: dict[str, Any]) -> str | None:
    """The scorer a line's task calls for: choice for a choice, exact for an
    answer (None: the task has none; --score must say)."""
    response = line.get("response")
    if "options" in line and "expected" in line:
        return "choice"
    if isinstance(response, dict) and "answer" in response and "expected" in line:
        return "exact"
    return None
