"""A folder found missing is opened once per classification pass, not once per file beneath
it; the pass under the lock looks again, and creating a folder forgets what was missing."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import EXAMPLES
from stackgen import write
from stackgen.errors import StackError
from stackgen.render import render_tree
from stackgen.spec import load_spec


@pytest.fixture(scope="module")
def reference():
    loaded = load_spec(EXAMPLES / "ai-stack.yaml", "ai-stack.yaml")
    return render_tree(loaded), loaded.source_sha256


@contextmanager
def failed_opens(monkeypatch):
    """The names whose os.open failed with ENOENT, in order."""
    failed: list[str] = []
    real = os.open

    def counting(path, *args, **kwargs):
        try:
            return real(path, *args, **kwargs)
        except FileNotFoundError:
            failed.append(os.fspath(path))
            raise

    with monkeypatch.context() as m:
        m.setattr(os, "open", counting)
        yield failed


@contextmanager
def without_memory(monkeypatch):
    """_Tree as it was: every lookup opens the folder again."""

    @contextmanager
    def forgetful(_tree):
        yield

    with monkeypatch.context() as m:
        m.setattr(write._Tree, "classifying", forgetful)
        yield


def summary(p: write.Plan) -> list[tuple]:
    return [(c.path, c.action, c.target, c.new, c.old, c.reason) for c in p.changes]


def test_a_missing_output_directory_is_opened_once_per_plan(reference, tmp_path, monkeypatch):
    files, sha = reference
    out = tmp_path / "out"
    with failed_opens(monkeypatch) as failed:
        fast = write.plan(out, files, sha)
    assert failed == [str(out)]
    with without_memory(monkeypatch), failed_opens(monkeypatch) as failed:
        slow = write.plan(out, files, sha)
    assert failed.count(str(out)) == len(files) + 1  # the control: once per file, and once for the state
    assert summary(fast) == summary(slow) and all(c.action == "create" for c in fast.changes)


def test_a_missing_subfolder_is_opened_once_per_plan(reference, tmp_path, monkeypatch):
    files, sha = reference
    out = tmp_path / "out"
    out.mkdir()
    nix = sum(f.path.startswith("nix/") for f in files)
    assert nix >= 5
    with failed_opens(monkeypatch) as failed:
        fast = write.plan(out, files, sha)
    assert failed.count("nix") == 1 and failed.count("quadlet") == 1 and failed.count(".stackgen") == 1
    with without_memory(monkeypatch), failed_opens(monkeypatch) as failed:
        slow = write.plan(out, files, sha)
    assert failed.count("nix") == nix
    assert summary(fast) == summary(slow)


def test_a_fresh_render_of_the_reference_stack_opens_each_missing_folder_at_most_twice(reference, tmp_path, monkeypatch):
    """The root: in plan()'s pass, and once more just before the lock's folder makes it; a
    subfolder: in the pass under the lock, and once more just before it is made. The tree
    written is the one the writer without the memory writes."""
    files, sha = reference
    with failed_opens(monkeypatch) as failed:
        write.apply(write.plan(tmp_path / "fast", files, sha))
    folders = {"nix", "quadlet", "compose", "env", str(tmp_path / "fast")}
    assert {name: failed.count(name) for name in folders} == {
        "nix": 2, "quadlet": 2, "compose": 2, "env": 2, str(tmp_path / "fast"): 2,
    }
    with without_memory(monkeypatch):
        write.apply(write.plan(tmp_path / "slow", files, sha))
    assert tree_of(tmp_path / "fast") == tree_of(tmp_path / "slow")


def tree_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".stackgen" not in p.parts}


def test_a_new_pass_sees_a_folder_made_meanwhile(tmp_path):
    with write._Tree(tmp_path) as tree:
        with tree.classifying():
            assert tree.folder(("nix",)) is None
            (tmp_path / "nix").mkdir()
            assert tree.folder(("nix",)) is None  # remembered for the rest of this pass
            assert tree.folder(("nix", "sub")) is None
        assert tree.folder(("nix",)) is not None  # outside a pass: looked up
    with write._Tree(tmp_path) as tree, tree.classifying():
        assert tree.folder(("nix",)) is not None


def test_creating_bypasses_and_clears_what_was_missing(tmp_path):
    with write._Tree(tmp_path) as tree, tree.classifying():
        assert tree.folder(("a",)) is None and tree.folder(("b",)) is None
        assert tree.folder(("a",), create=True) is not None  # bypassed: made and opened
        assert (tmp_path / "a").is_dir()
        (tmp_path / "b").mkdir()  # made by someone else after it was found missing
        assert tree.folder(("b",)) is not None  # the create above forgot every missing folder


def test_the_pass_under_the_lock_sees_a_file_made_in_a_folder_that_was_missing(reference, tmp_path):
    """plan() found nix/ missing; a file saved there before apply() is never overwritten."""
    files, sha = reference
    out = tmp_path / "out"
    p = write.plan(out, files, sha)
    (out / "nix").mkdir(parents=True)
    (out / "nix" / "devshell.nix").write_text("# mine\n")
    with pytest.raises(StackError, match="nix/devshell.nix changed while stackgen was rendering"):
        write.apply(p)
    assert (out / "nix" / "devshell.nix").read_text() == "# mine\n"


def test_a_file_in_the_way_of_a_folder_is_still_reported_for_each_file(reference, tmp_path, monkeypatch):
    """A file where a folder goes is an error (ENOTDIR), never remembered as missing."""
    files, sha = reference
    out = tmp_path / "out"
    out.mkdir()
    (out / "nix").write_text("a file")
    with pytest.raises(StackError) as fast:
        write.plan(out, files, sha)
    with without_memory(monkeypatch), pytest.raises(StackError) as slow:
        write.plan(out, files, sha)
    messages = [p.message for p in fast.value.problems]
    assert messages == [p.message for p in slow.value.problems]
    assert len(messages) == sum(f.path.startswith("nix/") for f in files)
    assert all("a parent of it is a file, not a directory" in m for m in messages)
