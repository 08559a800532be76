"""A real local server: llama-cpp-python's own OpenAI-compatible server on the
embedded model's weights, started here on 127.0.0.1.  It works on one request
at a time; rolebatch must not flood it, and must get every record answered
in the default mode (json, with the schema in the response format) and with
tools.  Seconds a record on 2 cores: the sample job, eight records."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolebatch.cli import main
from tests.helpers import read_lines, write_job

ROOT = Path(__file__).resolve().parent.parent
# A 270M base model through a chat template never closes its strings: the
# bound is what a user of a small model writes in the schema.
BOUNDED = {
    "title": "Response",
    "type": "object",
    "properties": {"poem": {"type": "string", "maxLength": 160}},
    "required": ["poem"],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server", reason="pip install 'llama-cpp-python[server]'")
    from rolebatch.providers.local import model_file

    port = _free_port()
    server = ["--model", str(model_file()), "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", *server, "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),  # llama.cpp says a lot: a pipe nobody reads would fill
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(base + "/models", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                tail = log.read_text()[-2000:]
                raise AssertionError(f"the server did not start: {tail}") from None
            time.sleep(0.5)
    yield base
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.parametrize("mode", [(), ("--mode", "tools")], ids=["default json", "tools"])
def test_eight_records_all_answered_without_flooding_the_server(llama_server, tmp_path, mode):
    shutil.copy(ROOT / "jobs" / "poems.jsonl", tmp_path / "poems.jsonl")
    schema = tmp_path / "bounded.json"
    schema.write_text(json.dumps(BOUNDED))
    where = ("--model", "llamacpp/gemma", "--base-url", llama_server, "--schema", str(schema))
    job = str(tmp_path / "poems.jsonl")
    code = main(["run", job, "-o", "o.jsonl", *where, *mode, "--progress", "none"])
    lines = read_lines(Path("o.jsonl"))
    assert code == 0, lines
    assert [line["status"] for line in lines] == ["ok"] * 8
    for line in lines:
        assert 0 <= len(line["response"]["poem"]) <= 160
        # Re-asks of answers that did not validate only: no request timed out.
        assert line["attempts"] <= 3


# A pattern that takes a line break in the poem: llama-cpp-python's server
# turns it into its grammar and writes the newline raw inside the JSON string
# (not as \n), which a strict JSON parser refuses.
TWO_LINES = {
    "title": "Response",
    "type": "object",
    "properties": {"poem": {"type": "string", "pattern": "^[A-Za-z ]{1,30}\n[A-Za-z ]{1,30}$"}},
    "required": ["poem"],
}


def test_a_raw_newline_from_the_real_server_is_an_answer_not_a_reask(llama_server, tmp_path):
    role = "You are a renowned poet."
    job = write_job(
        tmp_path / "two.jsonl",
        [
            {"id": t, "query": f"Write a two-line poem about {t}.", "role": role}
            for t in ("coffee", "rain")
        ],
    )
    schema = tmp_path / "two-lines.json"
    schema.write_text(json.dumps(TWO_LINES))
    where = ("--model", "llamacpp/gemma", "--base-url", llama_server, "--schema", str(schema))
    code = main(["run", str(job), "-o", "o.jsonl", *where, "--progress", "none"])
    lines = read_lines(Path("o.jsonl"))
    assert code == 0, lines
    for line in lines:
        assert line["status"] == "ok" and line["attempts"] == 1, line
        assert line["repaired"] == ["json_control_characters"]
        assert "\n" in line["response"]["poem"]
