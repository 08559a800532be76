"""The package reads as its map says: no import cycles, no module importing
from a layer above its own, and every module named in its package's
docstring and in docs/architecture.md's layout table.

Imports are read from the source (every import statement, those inside
functions and under TYPE_CHECKING included), not from a running process.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rolebatch"

# From the bottom up.  A module may import from its own layer or below.
LAYERS = [
    {"exits", "errors", "redaction", "bugs", "quirks"},
    {"records", "pacing", "cache"},
    {"providers", "tasks"},
    {"cost"},
    {"config", "progress"},
    {"plan"},
    {"via", "forecast"},
    {"pipeline"},
    {"evaluate"},  # the wing above the pipeline: scores, statistics, judges
    {"search"},  # choosing a role: races of runs, judged by evaluate's statistics
    {"commands"},
    {"cli", "__main__", ""},  # "": the package's own __init__
]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, however and wherever."""
    here = name.split(".") if path.name == "__init__.py" or not name else name.split(".")[:-1]
    if path.name != "__init__.py" and name and len(name.split(".")) == 1:
        here = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("rolebatch"):
                module = node.module.removeprefix("rolebatch").lstrip(".")
            else:
                continue
            targets = [f"{module}.{alias.name}".lstrip(".") for alias in node.names]
            targets.append(module)
        elif isinstance(node, ast.Import):
            targets = [
                alias.name.removeprefix("rolebatch").lstrip(".")
                for alias in node.names
                if alias.name.startswith("rolebatch")
            ]
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layer(name: str) -> int:
    top = name.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"rolebatch.{name} is in no layer: add its package to LAYERS")


def test_the_import_reader_sees_relative_absolute_and_late_imports():
    edges = graph()
    assert "via.verdict" in edges["forecast"]  # from .via.verdict import replay
    assert "records.lines" in edges["via.batches"]  # from ..records.lines import ...
    assert "pipeline" in edges[""]  # from .pipeline import run_job, inside a function
    assert "tasks.role" in edges["tasks"]  # inside open_task


def test_no_module_imports_in_a_cycle():
    edges = graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for other in sorted(edges[name]):
            if state.get(other) == 1:
                cycle = [*path[path.index(other) :], other]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"{name} (layer {layer(name)}) imports {other} (layer {layer(other)})"
        for name, others in graph().items()
        for other in others
        if layer(other) > layer(name)
    ]
    assert upward == []


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


@pytest.mark.parametrize(
    "package", sorted(p.parent for p in PACKAGE.rglob("__init__.py")), ids=lambda p: p.name
)
def test_every_module_is_named_in_its_package_docstring(package: Path):
    text = _docstring(package / "__init__.py")
    names = [p.stem for p in package.glob("*.py") if p.stem != "__init__"]
    names += [f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()]
    # Each on a line of its own, then two spaces or more before what it holds.
    missing = [n for n in names if not re.search(rf"^\s*{re.escape(n)}(\s{{2,}}|$)", text, re.M)]
    assert missing == [], f"{package.name}/__init__.py's docstring leaves out {missing}"


def test_every_module_is_in_the_architecture_pages_layout_table():
    readme = (ROOT / "docs/architecture.md").read_text()
    table = readme.split("### The package", 1)[1].split("\n\n**Adding", 1)[0]
    paths = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    ]
    missing = [path for path in paths if f"`{path}`" not in table]
    assert missing == []


def test_python_dash_m_rolebatch_works_and_no_module_named_batch_is_installed():
    import importlib.util
    import subprocess
    import sys

    assert importlib.util.find_spec("batch") is None
    result = subprocess.run(
        [sys.executable, "-m", "rolebatch", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "rolebatch" in result.stdout
