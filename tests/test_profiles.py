"""Roles given as profiles (RoleLLM's RoleGPT): who the character is and
what they say in the system instruction, example dialogues as earlier turns.
The exact messages per layout, per protocol (OpenAI-compatible, Anthropic's
Messages, the embedded model's prompt) and in both Batch APIs; the checks
that refuse a bad or too long profile before anything is sent; and a
profile as a group of a sweep like any other role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolebatch.cli import main
from rolebatch.providers.local import render_prompt, without_reasks
from tests.helpers import read_lines, write_job

HOLMES = {
    "name": "Sherlock Holmes",
    "description": "A consulting detective of Baker Street who reasons from small details.",
    "catchphrases": ["Elementary.", "The game is afoot."],
    "examples": [
        {
            "user": "How did you know I had been abroad?",
            "assistant": "Your tan stops at the wrist, and your boots are of a foreign make.",
        },
        {
            "user": "What do you make of this hat?",
            "assistant": "Its owner was once prosperous and has fallen on hard times.",
        },
    ],
}
BARE = {key: value for key, value in HOLMES.items() if key != "examples"}
INSTRUCTION = (
    "You are Sherlock Holmes. A consulting detective of Baker Street who reasons from small"
    ' details.\nThings Sherlock Holmes often says: "Elementary."; "The game is afoot.".'
    "\nAnswer as Sherlock Holmes would, in Sherlock Holmes's own voice."
)
TURNS = [
    {"role": "user", "content": "How did you know I had been abroad?"},
    {
        "role": "assistant",
        "content": "Your tan stops at the wrist, and your boots are of a foreign make.",
    },
    {"role": "user", "content": "What do you make of this hat?"},
    {
        "role": "assistant",
        "content": "Its owner was once prosperous and has fallen on hard times.",
    },
]
QUERY = "Write me a short poem about fog."


def roles_file(tmp_path: Path, *rows: dict) -> Path:
    return write_job(tmp_path / "roles.jsonl", list(rows))


def one_job(tmp_path: Path, **record) -> Path:
    return write_job(tmp_path / "j.jsonl", [{"id": "q1", "query": QUERY, **record}])


# -- the messages ------------------------------------------------------------


@pytest.mark.parametrize("layout", ["system", "split"])
def test_a_profile_is_its_instruction_then_the_example_turns_then_the_query(
    rolebatch, fake, tmp_path, layout
):
    roles = roles_file(
        tmp_path,
        {"id": "plain", "role": "You are Sherlock Holmes."},
        {"id": "bare", **BARE},
        {"id": "full", **HOLMES, "metadata": {"kind": "profile"}},
    )
    job = one_job(tmp_path)
    result = rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles), "--layout", layout)
    assert result.code == 0, result.err
    sent = [r.body["messages"] for r in fake.requests]
    assert len(sent) == 3
    full = [m for m in sent if len(m) == 6]
    bare = [m for m in sent if len(m) == 2 and m[0]["content"] == INSTRUCTION]
    assert full == [
        [{"role": "system", "content": INSTRUCTION}, *TURNS, {"role": "user", "content": QUERY}]
    ]
    # Without examples: the same instruction and the query, and nothing else.
    assert bare == [
        [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": QUERY}]
    ]
    # The plain role is what it always was in the layout.
    (plain,) = [m for m in sent if m not in full and m not in bare]
    if layout == "system":
        assert plain == [{"role": "system", "content": f"You are Sherlock Holmes. {QUERY}"}]
    else:
        assert plain == [
            {"role": "system", "content": "You are Sherlock Holmes."},
            {"role": "user", "content": QUERY},
        ]
    lines = {line["role_id"]: line for line in read_lines(Path("o.jsonl"))}
    assert lines["full"]["role"] == HOLMES and lines["full"]["role_metadata"] == {"kind": "profile"}
    assert lines["bare"]["role"] == BARE
    assert lines["plain"]["role"] == "You are Sherlock Holmes."


def test_a_job_record_may_give_its_own_role_as_a_profile(rolebatch, fake, tmp_path):
    job = one_job(tmp_path, role=HOLMES)
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    (request,) = fake.requests
    assert request.body["messages"] == [
        {"role": "system", "content": INSTRUCTION},
        *TURNS,
        {"role": "user", "content": QUERY},
    ]
    (line,) = read_lines(Path("o.jsonl"))
    assert line["role"] == HOLMES
    # report groups it by the character's name
    assert main(["report", "o.jsonl", "--format", "json"]) == 0


def test_personas_leads_with_the_profile_and_refuses_examples(rolebatch, fake, tmp_path, capsys):
    job = one_job(tmp_path, role=BARE)
    assert rolebatch(str(job), "-o", "o.jsonl", "--layout", "personas").code == 0
    (request,) = fake.requests
    assert request.body["messages"][1] == {
        "role": "user",
        "content": f"Lead persona: {INSTRUCTION}\nTask: {QUERY}",
    }
    fake.reset()
    job = one_job(tmp_path, role=HOLMES)
    refused = rolebatch(str(job), "-o", "o2.jsonl", "--layout", "personas")
    assert refused.code == 2
    assert f"{job}:1: field 'role': profile 'Sherlock Holmes' has example dialogues" in refused.err
    assert fake.requests == [] and not Path("o2.jsonl").exists()


def test_anthropic_gets_the_instruction_as_system_and_the_turns_as_messages(claude, fake, tmp_path):
    job = one_job(tmp_path, role=HOLMES)
    result = claude(str(job), "-o", "o.jsonl")
    assert result.code == 0, result.err
    (request,) = fake.requests
    system = request.body["system"]
    text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    assert text == INSTRUCTION
    assert request.body["messages"] == [*TURNS, {"role": "user", "content": QUERY}]


def test_both_batch_apis_send_what_the_live_path_sends(rolebatch, claude, fake, tmp_path):
    job = one_job(tmp_path, role=HOLMES)
    batch = ("--via", "batch", "--poll-interval", "0.01")
    assert rolebatch(str(job), "-o", "live.jsonl").code == 0
    live = fake.requests[0].body
    fake.reset()
    assert rolebatch(str(job), "-o", "batch.jsonl", *batch).code == 0
    (batch_id,) = fake.state.batches.batches
    (sent,) = fake.state.batches.requests_of(batch_id)
    assert sent["body"]["messages"] == live["messages"]
    assert sent["body"]["messages"][1:5] == TURNS
    fake.reset()
    assert claude(str(job), "-o", "claude.jsonl").code == 0
    live = fake.requests[0].body
    fake.reset()
    assert claude(str(job), "-o", "claude-batch.jsonl", *batch).code == 0
    (message_batch,) = fake.state.message_batches.batches.values()
    (request,) = message_batch.requests
    assert (
        request["params"]["messages"]
        == live["messages"]
        == [
            *TURNS,
            {"role": "user", "content": QUERY},
        ]
    )
    assert request["params"]["system"] == live["system"]


def test_the_embedded_model_reads_the_turns_as_asked_and_replied_lines():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    messages = [
        {"role": "system", "content": INSTRUCTION},
        *TURNS,
        {"role": "user", "content": QUERY},
        # instructor's re-ask: the model's own answer, then the correction
        {"role": "assistant", "content": '{"answer": 3}'},
        {"role": "user", "content": "Correct your JSON ONLY RESPONSE"},
    ]
    prompt = render_prompt(without_reasks(messages, ['{"answer": 3}']), schema)
    assert prompt == (
        "Each answer is a JSON object that follows the instruction and matches this JSON"
        f" Schema: {json.dumps(schema)}\n\n"
        f"Role: {INSTRUCTION}\n"
        "Asked: How did you know I had been abroad?\n"
        "Replied: Your tan stops at the wrist, and your boots are of a foreign make.\n"
        "Asked: What do you make of this hat?\n"
        "Replied: Its owner was once prosperous and has fallen on hard times.\n"
        f"Instruction: {QUERY}\n"
        "Answer: "
    )
    # Without the re-ask's own answer known, its turns would read as examples.
    assert "Correct your JSON" in render_prompt(without_reasks(messages, []), schema)


# -- the checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "row,said",
    [
        ({**HOLMES, "voice": "deep"}, "field 'voice': unknown key in a profile"),
        ({**HOLMES, "name": " "}, "field 'name': expected a non-empty string"),
        ({key: v for key, v in HOLMES.items() if key != "description"}, "field 'description'"),
        ({**HOLMES, "catchphrases": ["Elementary.", ""]}, "field 'catchphrases[1]'"),
        ({**HOLMES, "catchphrases": "Elementary."}, "field 'catchphrases': expected an array"),
        ({**HOLMES, "examples": {"user": "a"}}, "field 'examples': expected an array"),
        ({**HOLMES, "examples": {}}, "field 'examples': expected an array"),
        ({**HOLMES, "catchphrases": ""}, "field 'catchphrases': expected an array"),
        ({**HOLMES, "examples": [{"user": "Hello."}]}, "field 'examples[0].assistant': required"),
        (
            {**HOLMES, "examples": [{"user": "Hello.", "assistant": " "}]},
            "field 'examples[0].assistant': expected a non-empty string",
        ),
        (
            {**HOLMES, "examples": [{"user": "Hi.", "assistant": "Yes.", "system": "x"}]},
            "field 'examples[0].system': unknown key in a turn",
        ),
        ({**HOLMES, "examples": ["Hello."]}, "field 'examples[0]': expected an object"),
        ({**HOLMES, "role": "You are Holmes."}, "field 'name': unknown key (allowed: id, role"),
    ],
)
def test_a_bad_profile_is_refused_with_its_file_line_and_field(
    rolebatch, fake, tmp_path, row, said
):
    roles = roles_file(tmp_path, {"id": "plain", "role": "You are a poet."}, {"id": "h", **row})
    job = one_job(tmp_path)
    result = rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles))
    assert result.code == 2
    assert f"{roles}:2: {said}" in result.err
    assert fake.requests == [] and not Path("o.jsonl").exists()
    # The same profile as a record's role: the job's file and line, the field under role.
    job = write_job(tmp_path / "j2.jsonl", [{"query": "Hello."}, {"query": QUERY, "role": row}])
    if "role" in row:
        return  # a roles file's line only: a record's role object has no "role" in it
    result = rolebatch(str(job), "-o", "o.jsonl")
    assert result.code == 2
    field = said.split("'")[1]
    assert f"{job}:2: field 'role.{field}'" in result.err
    assert fake.requests == [] and not Path("o.jsonl").exists()


def test_the_same_profile_twice_is_refused_as_the_same_role(rolebatch, fake, tmp_path):
    roles = roles_file(tmp_path, {"id": "a", **HOLMES}, {"id": "b", **HOLMES})
    result = rolebatch(str(one_job(tmp_path)), "-o", "o.jsonl", "--roles", str(roles))
    assert result.code == 2 and f"{roles}:2: field 'role': the same role as line 1" in result.err


def test_a_profile_too_long_for_the_models_context_is_refused_before_anything(
    rolebatch, fake, tmp_path
):
    # The embedded model's 2,048 tokens, less the 128 its answers may take:
    # a profile of about 2,000 tokens does not fit; one of 1,500 does.
    long = {**HOLMES, "description": "He notices everything. " * 340}
    fits = {**HOLMES, "description": "He notices everything. " * 240}
    roles = roles_file(tmp_path, {"id": "fits", **fits}, {"id": "long", **long})
    job = one_job(tmp_path)
    args = [
        "run",
        str(job),
        "-o",
        "o.jsonl",
        "--roles",
        str(roles),
        "--model",
        "local/gemma-3-270m",
    ]
    code = main(args)
    assert code == 2
    assert not Path("o.jsonl").exists()
    # The same on a hosted model, from what the price data knows of its context.
    huge = {**HOLMES, "examples": [{"user": "Go on.", "assistant": "Indeed. " * 70_000}]}
    job = write_job(tmp_path / "j2.jsonl", [{"query": QUERY}, {"query": QUERY, "role": huge}])
    result = rolebatch(str(job), "-o", "o.jsonl", "--model", "openai/gpt-4o-mini")
    assert result.code == 2
    assert f"{job}:2: field 'role': the profile is about 140," in result.err
    assert "over the 128,000 the model's context leaves" in result.err
    assert fake.requests == []
    # A model whose context is not known: sent as it is.
    ok = rolebatch(str(job), "-o", "o.jsonl", "--model", "compat/some-model")
    assert ok.code == 0, ok.err


def test_the_local_refusal_names_the_roles_line(tmp_path, capsys):
    long = {**HOLMES, "description": "He notices everything. " * 340}
    roles = roles_file(tmp_path, {"id": "plain", "role": "You are Holmes."}, {"id": "long", **long})
    job = one_job(tmp_path)
    assert main(["run", str(job), "--roles", str(roles), "--model", "local/gemma-3-270m"]) == 2
    err = capsys.readouterr().err
    assert f"{roles}:2: profile 'long': the profile is about 2," in err
    assert "over the 1,920 the model's context leaves after the answer" in err


# -- prompt caches, the estimate, resume -----------------------------------------

# About 1,400 tokens of example dialogue at 4 characters a token: a prefix
# Anthropic caches (1,024 and more) only with the examples in it.
LONG_EXAMPLES = {
    **HOLMES,
    "examples": [
        {
            "user": f"What do you see in clue {i}?",
            "assistant": f"Clue {i} tells me the man walked here from the station in the rain.",
        }
        for i in range(60)
    ],
}


def test_anthropic_caches_the_whole_profile_up_to_its_last_example(claude, fake, tmp_path):
    records = [
        {"id": f"q{i}", "query": f"Write about thing {i}.", "role": LONG_EXAMPLES} for i in range(3)
    ]
    job = write_job(tmp_path / "j.jsonl", records)
    result = claude(
        str(job), "-o", "o.jsonl", "--model", "anthropic/claude-sonnet-4-5", "--concurrency", "1"
    )
    assert result.code == 0, result.err
    for i, request in enumerate(fake.requests):
        messages = request.body["messages"]
        marked = [
            (m, block)
            for m, message in enumerate(messages)
            if isinstance(message["content"], list)
            for block in message["content"]
            if "cache_control" in block
        ]
        # One mark, on the last example's answer: the query after it is not cached.
        assert [(m, block["text"]) for m, block in marked] == [
            (len(messages) - 2, LONG_EXAMPLES["examples"][-1]["assistant"])
        ]
        assert messages[-1] == {"role": "user", "content": f"Write about thing {i}."}
    lines = read_lines(Path("o.jsonl"))
    written = lines[0]["usage"]["cache_write_tokens"]
    assert written > 1024 and "cached_tokens" not in lines[0]["usage"]
    for line in lines[1:]:
        # The share of the prompt read from the cache: all but the query and the schema.
        assert line["usage"]["cached_tokens"] == written
        # What is not read from the cache is what differs: the query (and the schema).
        plain = line["usage"]["prompt_tokens"] - line["usage"]["cached_tokens"]
        assert plain == lines[0]["usage"]["prompt_tokens"] - written
    # The profile without examples is too short to cache: no mark at all.
    fake.reset()
    short = write_job(tmp_path / "k.jsonl", [{"query": "Write.", "role": BARE}])
    assert claude(str(short), "-o", "short.jsonl").code == 0
    assert "cache_control" not in json.dumps(fake.requests[0].body)


def test_the_cache_key_and_seed_tell_a_profile_from_its_examples_less_self(
    rolebatch, fake, tmp_path
):
    roles = roles_file(tmp_path, {"id": "bare", **BARE}, {"id": "full", **HOLMES})
    job = write_job(
        tmp_path / "j.jsonl", [{"id": f"q{i}", "query": f"Write {i}."} for i in range(2)]
    )
    assert rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles)).code == 0
    keys: dict[int, set[str]] = {}
    for request in fake.requests:
        keys.setdefault(len(request.body["messages"]), set()).add(request.body["prompt_cache_key"])
    assert sorted(keys) == [2, 6] and all(len(found) == 1 for found in keys.values())
    assert keys[2] != keys[6]
    seeds = {(line["role_id"], line["id"]): line["seed"] for line in read_lines(Path("o.jsonl"))}
    assert seeds[("bare", "q0@bare")] != seeds[("full", "q0@full")]


def test_the_estimate_counts_the_profile_and_its_turns(tmp_path, capsys):
    def prompt_tokens(role) -> int:
        job = write_job(tmp_path / "e.jsonl", [{"query": QUERY, "role": role}] * 10)
        assert main(["estimate", str(job), "--model", "openai/gpt-4o", "--json"]) == 0
        return json.loads(capsys.readouterr().out)["prompt_tokens"]

    plain, bare, full = (
        prompt_tokens("You are Sherlock Holmes."),
        prompt_tokens(BARE),
        prompt_tokens(HOLMES),
    )
    turns = len(json.dumps(TURNS, ensure_ascii=False)) * 10 / 4
    assert full - bare == pytest.approx(turns, rel=0.05)
    # By hand: the plain role is one system message (layout system), the
    # profile its instruction and the query as two.
    one = [{"role": "system", "content": f"You are Sherlock Holmes. {QUERY}"}]
    two = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": QUERY}]
    added = len(json.dumps(two, ensure_ascii=False)) - len(json.dumps(one, ensure_ascii=False))
    assert bare - plain == pytest.approx(added * 10 / 4, abs=3)
    # OpenAI's cache from 1,024 tokens: the long profile's prefix is counted as read.
    job = write_job(
        tmp_path / "e.jsonl", [{"query": f"Write {i}.", "role": LONG_EXAMPLES} for i in range(4)]
    )
    assert main(["estimate", str(job), "--model", "openai/gpt-4o", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["prompt_cache_read_tokens"] >= 3 * 1024


def test_a_changed_profile_under_the_same_id_is_refused_on_resume(rolebatch, fake, tmp_path):
    roles = roles_file(tmp_path, {"id": "holmes", **HOLMES})
    job = write_job(
        tmp_path / "j.jsonl", [{"id": f"q{i}", "query": f"Write {i}."} for i in range(2)]
    )
    assert rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles)).code == 0
    before = Path("o.jsonl").read_bytes()
    # The same again: nothing to buy.
    fake.reset()
    assert rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles)).code == 0
    assert fake.requests == []
    roles_file(tmp_path, {"id": "holmes", **BARE})
    result = rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles))
    assert result.code == 2
    assert "role 'holmes' is not what it was when its lines were written" in result.err
    assert fake.requests == [] and Path("o.jsonl").read_bytes() == before


# -- a profile as a group: report and search ---------------------------------------


def test_report_pairs_plain_profile_and_examples_by_question_with_rouge(
    rolebatch, fake, tmp_path, capsys
):
    from rouge_score import rouge_scorer

    roles = roles_file(
        tmp_path,
        {"id": "plain", "role": "You are Sherlock Holmes."},
        {"id": "bare", **BARE},
        {"id": "full", **HOLMES},
    )
    records = [
        {
            "id": f"q{i}",
            "query": f"Write about clue {i}.",
            "expected": f"poem about clue {i} Holmes",
        }
        for i in range(6)
    ]
    job = write_job(tmp_path / "j.jsonl", records)
    assert (
        rolebatch(str(job), "-o", "o.jsonl", "--roles", str(roles), "--layout", "split").code == 0
    )
    capsys.readouterr()
    args = [
        "report",
        "o.jsonl",
        "--score",
        "rouge-l:poem",
        "--baseline",
        "bare",
        "--format",
        "json",
    ]
    assert main(args) == 0
    found = json.loads(capsys.readouterr().out)["scores"]
    # By hand: the library's ROUGE-L F per line, the mean difference per question.
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    score = {
        (line["id"].split("@")[0], line["role_id"]): scorer.score(
            line["expected"], line["response"]["poem"]
        )["rougeL"].fmeasure
        for line in read_lines(Path("o.jsonl"))
    }
    for group in ("full", "plain"):
        diffs = [score[(f"q{i}", group)] - score[(f"q{i}", "bare")] for i in range(6)]
        (row,) = [c for c in found["comparisons"] if c["key"] == group]
        assert row["n_pairs"] == 6 and row["baseline"] == "bare"
        assert row["diff"] == pytest.approx(sum(diffs) / 6)
        if group == "plain":  # the fake writes another poem under another system message
            assert any(abs(d) > 0.05 for d in diffs)


def test_a_search_races_profiles_like_roles_and_confirms_one(capsys, fake, monkeypatch, tmp_path):
    from tests.fakes.chat import World
    from tests.helpers import SECRET_KEY

    monkeypatch.setenv("OPENAI_API_KEY", SECRET_KEY)
    good = "Knows every answer."
    fake.state.world = World({good: 0.97}, control=0.5, seed=3)
    questions = [
        {
            "id": f"q{i}",
            "query": f"Which is right, question q{i}?",
            "options": ["right", "wrong", "other"],
            "expected": 1,
        }
        for i in range(60)
    ]
    write_job(tmp_path / "quiz.jsonl", questions)
    rows = [{"id": "none", "role": ""}]
    rows += [{"id": f"r{i}", "role": f"You are ordinary role number {i}."} for i in range(3)]
    rows += [
        {"id": "sage-bare", "name": "The Sage", "description": good},
        {
            "id": "sage",
            "name": "The Sage",
            "description": good,
            "examples": [{"user": "Is the sky blue?", "assistant": "On a clear day."}],
        },
        {"id": "fool", "name": "The Fool", "description": "Guesses."},
    ]
    write_job(tmp_path / "roles.jsonl", rows)
    argv = ["search", "quiz.jsonl", "--roles", "roles.jsonl", "--task", "choice"]
    argv += ["--model", "openai/gpt-4o", "--base-url", fake.base_url, "--progress", "none"]
    assert main([*argv, "-o", "found", "--format", "json"]) == 0
    decision = json.loads(capsys.readouterr().out)["decision"]
    assert decision["role"] in ("sage", "sage-bare") and decision["verdict"] == "better"
    state = json.loads((tmp_path / "found" / "search.json").read_text())
    assert state["roles"]["sage"]["examples"] == rows[5]["examples"]
    # The held-out answers were asked with the profile's messages, and say it.
    held = [line for line in read_lines(tmp_path / "found" / "held-out.jsonl")]
    picked = [line for line in held if line["role_id"] == decision["role"]]
    assert picked and all(line["role"]["name"] == "The Sage" for line in picked)


def test_a_judge_shown_the_role_reads_the_profile_s_instruction(rolebatch, fake, tmp_path, capsys):
    job = one_job(tmp_path, role=HOLMES)
    assert rolebatch(str(job), "-o", "o.jsonl").code == 0
    rubric = tmp_path / "rubric.md"
    rubric.write_text("Does it sound like the character? Score 1-5.\n")
    fake.reset()
    argv = ["judge", "o.jsonl", "--rubric", str(rubric), "--show-role", "-o", "graded.jsonl"]
    argv += ["--model", "openai/gpt-4o", "--base-url", fake.base_url, "--progress", "none"]
    assert main(argv) == 0, capsys.readouterr().err
    (request,) = fake.requests
    assert f"The answer was written as: {INSTRUCTION}" in request.body["messages"][1]["content"]
    (line,) = read_lines(Path("graded.jsonl"))
    assert line["judged_role"] == HOLMES


def test_the_offline_example_is_checked_and_priced_before_anything_runs(
    capsys, monkeypatch, tmp_path
):
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)  # its settings file names its roles file from here
    job = root / "jobs/characters.jsonl"
    assert main(["estimate", str(job), "--json", "-o", str(tmp_path / "c.jsonl")]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["records"] == 16 * 7
    roles = read_lines(root / "jobs/characters-roles.jsonl")
    given = [row.get("metadata", {}).get("given") for row in roles]
    assert given.count("profile") == given.count("plain") == 2
    assert given.count("profile without examples") == 2
    for row in roles:
        if row.get("metadata", {}).get("given") == "profile":
            assert len(row["examples"]) == 2 and row["catchphrases"]
            bare = next(r for r in roles if r["id"] == f"{row['id']}-bare")
            assert {k: v for k, v in row.items() if k not in ("id", "examples", "metadata")} == {
                k: v for k, v in bare.items() if k not in ("id", "metadata")
            }
    assert all(isinstance(line["expected"], str) for line in read_lines(job))


def test_a_profile_on_the_embedded_model_end_to_end(capsys, tmp_path):
    pytest.importorskip("llama_cpp")
    job = one_job(tmp_path, role=HOLMES)
    code = main(["run", str(job), "--task", "role", "--progress", "none", "-o", "o.jsonl"])
    assert code == 0, capsys.readouterr().err
    (line,) = read_lines(Path("o.jsonl"))
    assert line["status"] == "ok" and line["role"] == HOLMES
    # The prompt it read: the profile's turns are in its prompt tokens.
    plain = one_job(tmp_path, role="You are Sherlock Holmes.")
    assert main(["run", str(plain), "--progress", "none", "-o", "p.jsonl", "--fresh"]) == 0
    (other,) = read_lines(Path("p.jsonl"))
    turns = sum(len(m["content"]) for m in TURNS)
    assert line["usage"]["prompt_tokens"] - other["usage"]["prompt_tokens"] > turns / 6
