from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.fakes.server import FakeServer
from tests.helpers import ANTHROPIC_KEY, CLAUDE, SECRET_KEY, job_lines


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


@pytest.fixture
def claude(rolebatch, fake, monkeypatch):
    """The CLI against the fake Messages API, with an Anthropic key set."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)

    def invoke(*args: str):
        model = () if "--model" in args else ("--model", CLAUDE)
        return rolebatch(*args, *model, base_url=fake.root)

    return invoke


@pytest.fixture
def bought(fake):
    """How many times each job line was put in a batch, at either fake provider."""

    def count() -> Counter:
        return job_lines(
            [*fake.state.batches.custom_ids(), *fake.state.message_batches.custom_ids()]
        )

    return count
