"""Every new version of a file goes through one helper
(``records.files.replacing``): whole or not at all, one naming scheme for
its temporary file, none left behind however the block ends."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rolebatch.errors import OutputError
from rolebatch.records.files import replacing, stale_tmps, tmp_of

PACKAGE = Path(__file__).resolve().parents[1] / "rolebatch"


def test_a_new_version_replaces_the_old_whole(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with replacing(path) as new:
        assert new.tmp == tmp_of(path) and new.tmp.name.endswith(".tmp")
        new.tmp.write_text("new")
        assert path.read_text() == "old"  # not before the block ends
    assert path.read_text() == "new" and not stale_tmps(path)


@pytest.mark.parametrize("ending", [KeyboardInterrupt, ValueError])
def test_whatever_ends_the_block_early_leaves_the_old_and_no_temporary_file(tmp_path, ending):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(ending), replacing(path) as new:
        new.tmp.write_text("half")
        raise ending
    assert path.read_text() == "old" and not stale_tmps(path)


def test_the_same_content_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("same")
    before = path.stat().st_ino
    with replacing(path, durable=False) as new:
        new.tmp.write_text("same")
        new.keep_old()
    assert path.stat().st_ino == before and not stale_tmps(path)


def test_a_failed_write_names_the_file(tmp_path):
    path = tmp_path / "f.txt"
    path.mkdir()  # a folder in the way: the rename fails
    (path / "x").write_text("x")
    with pytest.raises(OutputError, match=f"cannot write {path}"), replacing(path) as new:
        new.tmp.write_text("new")
    assert (path / "x").read_text() == "x" and not stale_tmps(path)


def test_no_module_renames_files_by_hand():
    """os.replace only in the helper, and where a file is moved rather than
    written anew: a merged output put in place between its sidecar's two
    writes, a damaged cache set aside, an earlier version's file renamed."""
    allowed = {"records/files.py", "records/output.py", "cache/store.py", "via/journal.py"}
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("replace", "rename")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                found.add(str(path.relative_to(PACKAGE)))
    assert found <= allowed, found - allowed
