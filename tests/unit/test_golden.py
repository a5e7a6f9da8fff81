"""Golden trees: tests/golden/<case>/ holds every file the renderer writes for that case's spec.

A missing, extra or different file fails. `pytest --update-golden` rewrites the trees.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import GOLDEN, golden_cases, render_spec

CASES = golden_cases()


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".stackgen" not in p.relative_to(root).parts and p.name != "stack.yaml"
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_tree(case, tmp_path, request):
    out = tmp_path / "out"
    render_spec(CASES[case], out)
    got = tree(out)
    golden = GOLDEN / case
    if request.config.getoption("--update-golden"):
        shutil.rmtree(golden, ignore_errors=True)
        for rel, data in got.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_bytes(data)
    assert golden.is_dir(), f"no golden tree for {case}; run pytest --update-golden"
    want = tree(golden)
    assert sorted(got) == sorted(want), "the set of rendered files changed"
    for rel in want:
        assert got[rel].decode() == want[rel].decode(), f"{case}/{rel} differs from the golden file"


def test_every_golden_tree_has_a_case():
    stale = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir() and p.name not in CASES)
    assert not stale, f"golden trees without a spec: {stale}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_is_deterministic(case, tmp_path):
    a = render_spec(CASES[case], tmp_path / "a")
    b = render_spec(CASES[case], tmp_path / "b")
    assert a == b
