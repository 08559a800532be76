"""The README's commands, read as a user follows them from top to bottom:
no two of them write one output under two configurations (the second would
be refused, exit 2), and every relative link resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# What makes an output another configuration (an output belongs to one).
CONFIGURING = (
    "--model",
    "--layout",
    "--task",
    "--roles",
    "--samples",
    "--temperature",
    "--max-tokens",
    "--schema",
    "--rubric",
    "--against",
    "--against-output",
    "--show-role",
    "--synthesizer",
    "--via",
)


def commands() -> list[list[str]]:
    """Every rolebatch command in the README's sh and console blocks."""
    text = README.read_text()
    found = []
    for block in re.findall(r"```(?:sh|console)\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if line.startswith("rolebatch "):
                found.append(shlex.split(line.split(" #")[0]))
    return found


def _value(argv: list[str], option: str) -> str | None:
    for i, item in enumerate(argv):
        if item == option and i + 1 < len(argv):
            return argv[i + 1]
        if item.startswith(option + "="):
            return item.split("=", 1)[1]
    return None


def output_of(argv: list[str]) -> str | None:
    """Where the command writes its output (None: it writes none)."""
    command, target = argv[1], argv[2] if len(argv) > 2 else ""
    given = _value(argv, "-o") or _value(argv, "--output")
    if given:
        return given
    if command == "run" and "--shard" not in argv and "--shard-count" not in argv:
        return f"out/{Path(target).stem}.jsonl"
    if command == "judge" and "--estimate" not in argv:
        against = _value(argv, "--against") or (
            Path(_value(argv, "--against-output") or "").stem or None
        )
        return (
            f"out/{Path(target).stem}.{'judged' if against is None else 'against-' + against}.jsonl"
        )
    if command == "panel" and "--estimate" not in argv:
        return f"out/{Path(target).stem}.panel.jsonl"
    return None


def test_no_two_readme_commands_write_one_output_two_ways():
    seen: dict[str, tuple[tuple, list[str]]] = {}
    clashes = []
    for argv in commands():
        if argv[1] not in ("run", "judge", "panel"):
            continue
        out = output_of(argv)
        if out is None:
            continue
        config = (argv[1], *((o, _value(argv, o) or (o in argv)) for o in CONFIGURING))
        if out in seen and seen[out][0] != config:
            clashes.append(f"{out}: {shlex.join(seen[out][1])}  vs  {shlex.join(argv)}")
        seen.setdefault(out, (config, argv))
    assert clashes == []


def test_every_relative_link_resolves():
    text = README.read_text()
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert missing == []
