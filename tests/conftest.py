from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rolebatch.cli import main
from tests.fakeserver import FakeServer

SECRET_KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture(scope="session")
def _server() -> Iterator[FakeServer]:
    server = FakeServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake(_server: FakeServer) -> Iterator[FakeServer]:
    """The loopback Chat Completions server, with no faults and no recorded requests."""
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's keys, endpoints or defaults."""
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENROUTER_API_KEY",
        "ANTHROPIC_API_KEY",
        "JOB_COMPLETION_INDEX",
        "ROLEBATCH_QUOTA",
        "ROLEBATCH_MODEL",
        "ROLEBATCH_SCHEMA",
        "ROLEBATCH_CONCURRENCY",
        "ROLEBATCH_BACKEND",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def write_job(path: Path, records: list[dict[str, Any] | str]) -> Path:
    """Records as dicts (dumped as JSON) or raw strings (written as they are)."""
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record if isinstance(record, str) else json.dumps(record))
            handle.write("\n")
    return path


def poem_records(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i}",
            "query": f"Write a poem about thing {i}.",
            "role": "You are a renowned poet.",
        }
        for i in range(n)
    ]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def rolebatch(capsys: pytest.CaptureFixture[str], fake: FakeServer, monkeypatch):
    """Run the CLI in-process against the fake server, with a test key set."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)

    def invoke(*args: str, base_url: str | None = None) -> CliResult:
        argv = ["run", *args, "--base-url", base_url or fake.base_url, "--progress", "lines"]
        if "--model" not in args:
            argv += ["--model", "openai/gpt-4o"]
        code = main(argv)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke
