"""A key goes only to its own provider: a listener on OPENAI_BASE_URL (a
company proxy, say) receives nothing from any other provider, whichever
command makes the request; a URL named for a provider (the command line,
its own variable, a settings file) is used, and one from a settings file is
announced.  Every request that would leave the machine goes to a loopback
proxy that turns it away."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.providers.registry import PROVIDERS
from tests.fakes.listener import Listener
from tests.helpers import ANTHROPIC_KEY, CLAUDE, SECRET_KEY, poem_records, queries, write_job

# Every provider whose key OPENAI_BASE_URL must never see, and the local
# presets, which keep their own URL.
OTHERS = sorted(
    name for name, p in PROVIDERS.items() if p.url_env != "OPENAI_BASE_URL" and name != "local"
)
ROLES = [{"id": "none", "role": ""}, {"id": "poet", "role": "You are a renowned poet."}]


def key_of(name: str) -> str:
    return f"KEY-{name}-0123456789-SECRET"


@pytest.fixture
def company_proxy(monkeypatch):
    """OPENAI_BASE_URL on a listener, every provider's key set, and every
    request for a host off the machine sent to a proxy that refuses it."""
    listener = Listener().start()
    proxy = Listener("403 Forbidden").start()
    monkeypatch.setenv("OPENAI_BASE_URL", listener.url + "/v1")
    for p in PROVIDERS.values():
        if p.key_env and p.key_env != "OPENAI_API_KEY":
            monkeypatch.setenv(p.key_env, key_of(p.name))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
        monkeypatch.setenv(name.lower(), proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield listener
    listener.stop()
    proxy.stop()


@pytest.fixture
def swept(rolebatch, fake, tmp_path) -> Path:
    """An output to judge and to make a panel of: 2 questions under 2 roles,
    bought from the fake with --base-url on the command line."""
    job = write_job(tmp_path / "poems.jsonl", queries(2))
    roles = write_job(tmp_path / "roles.jsonl", ROLES)
    assert rolebatch(str(job), "-o", "sweep.jsonl", "--roles", str(roles)).code == 0
    Path("rubric.md").write_text("Scale: 1-5\n5: vivid.\n")
    return Path("sweep.jsonl")


QUICK = ("--max-retries", "0", "--timeout", "5", "--progress", "none")


@pytest.mark.parametrize("provider", OTHERS)
def test_openai_base_url_gets_no_other_providers_key_from_any_command(
    provider, swept, company_proxy, fake, tmp_path, capsys
):
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    asked = write_job(tmp_path / "q.jsonl", queries(4))
    model = f"{provider}/some-model"
    # A search's answers from the fake (named for compat/), its judge and its
    # proposer of this provider: each at its own provider's URL.
    compat = ["--model", "compat/fake", "--base-url", fake.base_url, "--roles", "roles.jsonl"]
    commands = {
        "search": [
            "search",
            str(asked),
            "--roles",
            "roles.jsonl",
            "--model",
            model,
            "--score",
            "includes",
            "-o",
            "s1",
            *QUICK,
        ],
        "search judge": [
            "search",
            str(asked),
            *compat,
            "--rubric",
            "rubric.md",
            "--judge-model",
            model,
            "-o",
            "s2",
            *QUICK,
        ],
        "search proposer": [
            "search",
            str(asked),
            *compat,
            "--score",
            "includes",
            "--propose",
            "3",
            "--proposer",
            model,
            "-o",
            "s3",
            *QUICK,
        ],
        "run": ["run", str(job), "--model", model, "-o", "r.jsonl", *QUICK],
        "estimate": ["estimate", str(job), "--model", model],
        "models": ["models", "--provider", provider],
        "judge": ["judge", str(swept), "--rubric", "rubric.md", "--model", model, *QUICK],
        "panel": ["panel", str(swept), "--synthesizer", "", "--model", model, *QUICK],
    }
    for command, argv in commands.items():
        before = len(fake.requests)
        code = main(argv)
        err = capsys.readouterr().err
        assert company_proxy.received() == b"", (command, code, err)
        assert key_of(provider) not in err
        assert not [r for r in fake.requests if key_of(provider) in str(r.headers)], command
        if command == "search judge":  # the answers were bought, then the judge went home
            assert len(fake.requests) > before and code == 3, err
    # It did ask somewhere: its own host (through the refusing proxy) or, for a
    # local preset, its own localhost port; the run stopped on that, not on
    # anything to do with the listener.
    assert main(["run", str(job), "--model", model, "-o", "again.jsonl", *QUICK]) == 3
    err = capsys.readouterr().err
    own = PROVIDERS[provider].base_url
    assert own is not None and (own in err or "cannot reach" in err), err


def test_status_and_cancel_go_where_the_batches_are(claude, fake, company_proxy, tmp_path, capsys):
    """Batches created at a URL named on the command line are looked after
    there, with that provider's key, whatever OPENAI_BASE_URL says."""
    job = write_job(tmp_path / "j.jsonl", poem_records(3))
    batches = fake.state.message_batches
    batches.plan.polls = 10**9
    batch = ("--via", "batch", "--poll-interval", "0.01", "--no-wait")
    result = claude(str(job), "-o", "b.jsonl", *batch)
    assert result.code == 4, result.err
    (batch_id,) = batches.batches
    assert main(["status", "b.jsonl"]) == 0
    assert f"batch {batch_id}: in_progress" in capsys.readouterr().out  # the fake's word
    assert main(["cancel", "b.jsonl"]) == 0
    assert f"batch {batch_id}: canceling" in capsys.readouterr().out
    assert company_proxy.received() == b""


def test_each_providers_own_variable_moves_its_key(fake, monkeypatch, tmp_path, capsys):
    """OPENAI_BASE_URL still serves openai/ and compat/, ANTHROPIC_BASE_URL
    anthropic/; each carries its own provider's key only."""
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    for model in ("openai/gpt-4o", "compat/gpt-4o"):
        assert main(["run", str(job), "--model", model, "-o", f"{model[:3]}.jsonl"]) == 0
    assert {r.headers.get("authorization") for r in fake.requests} == {f"Bearer {SECRET_KEY}"}
    fake.reset()
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.root)
    assert main(["run", str(job), "--model", CLAUDE, "-o", "c.jsonl"]) == 0
    # The key, in whichever header this SDK version sends it.
    sent = {r.headers.get("x-api-key") or r.headers.get("authorization") for r in fake.requests}
    assert {key.removeprefix("Bearer ") for key in sent} == {ANTHROPIC_KEY}
    capsys.readouterr()


def test_a_settings_file_that_names_a_host_says_so_at_the_start(
    fake, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    job = write_job(tmp_path / "j.jsonl", poem_records(2))
    settings = tmp_path / "j.toml"
    settings.write_text(f'model = "{CLAUDE}"\nbase-url = "{fake.root}"\n')
    assert main(["run", str(job), "-o", "s.jsonl", "--progress", "none"]) == 0
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert f"{settings} sets base-url = {fake.root}" in first and "API key" in first
    assert ANTHROPIC_KEY not in err
    # Named on the command line, it is the user's own word: nothing to say.
    assert main(["run", str(job), "-o", "t.jsonl", "--base-url", fake.root]) == 0
    assert "sets base-url" not in capsys.readouterr().err
