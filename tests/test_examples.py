"""The example workflow in docs/examples parses as YAML, and every rolebatch
command line in it parses with rolebatch's own option parser."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import yaml

from rolebatch.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def test_the_nightly_workflow_is_yaml_and_its_command_lines_parse():
    workflow = yaml.safe_load((ROOT / "docs/examples/role-eval.yml").read_text())
    steps = workflow["jobs"]["evaluate"]["steps"]
    commands = [s["run"] for s in steps if "run" in s and s["run"].startswith("rolebatch ")]
    assert len(commands) == 2
    for command in commands:
        argv = shlex.split(command)[1:]
        sub = cli.commands[argv[0]]
        # Parse only: a context of the command with these arguments, nothing run.
        with sub.make_context(argv[0], argv[1:], parent=click.Context(cli)) as ctx:
            assert ctx.params
    assert "--fail-if-worse" in commands[1] and "--by output" in commands[1]
    # The cache the run reads and fills is the folder the cache action keeps.
    (kept,) = [s["with"] for s in steps if s.get("uses", "").startswith("actions/cache@")]
    argv = shlex.split(commands[0])
    assert argv[argv.index("--cache") + 1] == kept["path"]
    assert kept["restore-keys"] and kept["key"].startswith(kept["restore-keys"])
