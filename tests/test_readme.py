"""The README and its docs pages, read as a user follows them: no two of
their commands write one output under two configurations (the second would
be refused, exit 2), every relative link resolves to a file and a heading,
and the README stays a front page."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
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
    """Every rolebatch command in the sh and console blocks, README first."""
    text = "\n".join(page.read_text() for page in PAGES)
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


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    found, in_code = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and re.match(r"^#{1,6} ", line):
            found.add(_slug(line.lstrip("#")))
    return found


def test_every_relative_link_resolves_to_a_file_and_a_heading():
    missing = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            file = page if not path else (page.parent / path).resolve()
            if not file.exists():
                missing.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                missing.append(f"{page.name}: {target} (no such heading)")
    assert missing == []


def test_the_readme_is_a_front_page():
    text = README.read_text()
    assert len(text) <= 25_000
    assert "## Contents" in text and "## Two commands" in text and "## A first job" in text
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in text, f"the README does not link {page.name}"
