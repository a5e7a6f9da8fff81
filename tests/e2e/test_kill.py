"""Kill `stackgen render` with SIGKILL at random moments, many times, and check the tree.

Two specs, A and B, render different contents into every file, and B renders two files
that A does not (a GPU stack), so creates, updates and removes are all interrupted. The
renders alternate A, B, A, ... and each one is killed at a random moment; after every kill
each file must be the complete A version, the complete B version, or absent (where one of
the specs does not render it), and the state file must be valid. A render that runs to its
end must succeed: the journal in the state file makes the files a killed render left behind
known to be stackgen's, whichever spec the next render uses. Finally an uninterrupted render
must repair the tree: `render --check` clean, no temp files, exactly the rendered files.

The kill window is the child's write phase. A test-only sitecustomize (tests/e2e/killhook,
put on the child's PYTHONPATH) adds a few milliseconds to each fsync/rename/unlink so that
random delays land inside it often; the production code has no hook. The test asserts that
enough kills did land inside it (a mixed A/B tree or a stale temp file), or it proves nothing.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackgen.render import render_tree
from stackgen.spec import load_spec

ITERATIONS = int(os.environ.get("STACKGEN_KILL_ITERATIONS", "40"))
BUDGET_S = float(os.environ.get("STACKGEN_KILL_BUDGET_S", "45"))  # a slow machine runs fewer
MIN_ITERATIONS = 12
SLOW_IO = "0.01"  # seconds added to each fsync/rename/unlink in the child
HOOK = Path(__file__).parent / "killhook"

SPEC_A = """\
version: 1
name: kill-test
description: "version A"
systems: [x86_64-linux]
packages: [git]
env:
  MODE: alpha
targets: [devshell, mirrors]
"""

SPEC_B = """\
version: 1
name: kill-test
description: "version B"
systems: [x86_64-linux]
mirrors:
  pypi: https://pypi.example.org/simple
gpu:
  vendor: nvidia
packages: [git, jq]
env:
  MODE: beta
targets: [devshell, mirrors]
"""


def expected_files(text: str, where: Path) -> dict[str, bytes]:
    spec = where / "expected.yaml"
    spec.write_text(text)
    return {f.path: f.text.encode() for f in render_tree(load_spec(spec, "stack.yaml"))}


class Child:
    """`stackgen render` in a subprocess that reports (through a pipe) when it starts writing."""

    def __init__(self, out: Path, *args: str):
        read_end, write_end = os.pipe()
        env = dict(os.environ, PYTHONPATH=str(HOOK), STACKGEN_TEST_SLOW_IO=SLOW_IO, STACKGEN_TEST_WRITE_FD=str(write_end))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackgen", "render", "stack.yaml", *args],
            cwd=out,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(write_end,),
        )
        os.close(write_end)
        self.pipe = read_end

    def wait_for_writes(self) -> float | None:
        """Block until the child's first fsync/rename/unlink; None if it ended without one."""
        ready, _, _ = select.select([self.pipe], [], [], 60)
        assert ready, "the render neither wrote nor ended within 60 s"
        return time.monotonic() if os.read(self.pipe, 1) else None

    def finish(self) -> tuple[int, str, str]:
        try:
            stdout, stderr = self.proc.communicate(timeout=60)
        finally:
            os.close(self.pipe)
        return self.proc.returncode, stdout, stderr


def timed_writes(out: Path) -> float:
    """Run a whole render; the seconds from its first write to its exit."""
    child = Child(out)
    began = child.wait_for_writes()
    rc, _, err = child.finish()
    assert rc == 0 and began is not None, err
    return time.monotonic() - began


def temp_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.tmp"))


def check_tree(out: Path, versions: dict[str, set[bytes]], optional: set[str], context: str) -> None:
    """Every file is one complete version (or absent where a spec does not render it)."""
    for rel, allowed in versions.items():
        path = out / rel
        if not path.exists():
            assert rel in optional, f"{context}: {rel} is missing, and both specs render it"
            continue
        data = path.read_bytes()
        assert data in allowed, f"{context}: {rel} is neither version (a torn write):\n{data[:300]!r}"
    state = out / ".stackgen" / "state.json"
    if state.exists():
        json.loads(state.read_text())  # never half-written
    leftovers = sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "stack.yaml" and not p.name.endswith(".tmp")
    )
    assert set(leftovers) <= set(versions) | {".stackgen/state.json"}, f"{context}: unexpected files {leftovers}"


def test_sigkill_at_random_points_leaves_old_or_new_and_next_render_repairs(tmp_path):
    seed = int(os.environ.get("STACKGEN_KILL_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    a = expected_files(SPEC_A, tmp_path)
    b = expected_files(SPEC_B, tmp_path)
    assert set(b) - set(a), "B must render files A does not"
    assert all(a[p] != b[p] for p in set(a) & set(b)), "every shared file must differ between A and B"
    versions = {p: {v for v in (a.get(p), b.get(p)) if v is not None} for p in set(a) | set(b)}
    optional = set(a) ^ set(b)
    tag = {**{(p, v): "A" for p, v in a.items()}, **{(p, v): "B" for p, v in b.items()}}

    out = tmp_path / "project"
    out.mkdir()
    spec = out / "stack.yaml"
    spec.write_text(SPEC_A)
    assert timed_writes(out) > 0 and not temp_files(out)

    # Calibrate: how long the write phase of a render lasts (from its first fsync to its exit).
    windows = []
    for text in (SPEC_B, SPEC_A, SPEC_B):
        spec.write_text(text)
        windows.append(timed_writes(out))
    window = statistics.median(windows)

    outcomes = {"finished": 0, "killed": 0, "mixed": 0, "temp": 0}
    deadline = time.monotonic() + BUDGET_S
    for i in range(ITERATIONS):
        if i >= MIN_ITERATIONS and time.monotonic() > deadline:
            break
        text = SPEC_B if i % 2 == 0 else SPEC_A
        spec.write_text(text)
        child = Child(out)
        if i % 4 != 3:  # every fourth render runs to its end: it must repair what the kills left
            if child.wait_for_writes() is not None:
                time.sleep(rng.uniform(0, window))
            child.proc.send_signal(signal.SIGKILL)
        rc, _, err = child.finish()
        context = f"iteration {i} (seed {seed}; rerun with STACKGEN_KILL_SEED={seed})"
        assert rc in (0, -signal.SIGKILL), f"{context}: render failed:\n{err}"
        outcomes["finished" if rc == 0 else "killed"] += 1
        check_tree(out, versions, optional, context)
        kinds = {tag[(p, (out / p).read_bytes())] for p in versions if (out / p).exists()}
        outcomes["mixed"] += len(kinds) > 1
        outcomes["temp"] += bool(temp_files(out))

    print(f"kill test: seed {seed}, write window {window:.3f}s, {outcomes}")
    # The kills must have landed inside the writes often enough for the test to mean anything.
    done = outcomes["finished"] + outcomes["killed"]
    assert outcomes["mixed"] + outcomes["temp"] >= max(3, done // 10), f"kills missed the write window: {outcomes} (seed {seed})"

    for text, want in ((SPEC_A, a), (SPEC_B, b)):
        spec.write_text(text)
        rc, _, err = Child(out).finish()
        assert rc == 0, f"the repairing render failed (seed {seed}, {outcomes}):\n{err}"
        rc, stdout, err = Child(out, "--check").finish()
        assert rc == 0, f"--check after repair (seed {seed}):\n{stdout}{err}"
        assert not temp_files(out), "the repairing render sweeps stale temp files"
        for rel in versions:
            assert ((out / rel).read_bytes() if (out / rel).exists() else None) == want.get(rel), rel
        state = json.loads((out / ".stackgen/state.json").read_text())
        assert "incomplete" not in state and sorted(state["files"]) == sorted(want)


def run_hooked(out: Path, env: dict[str, str], pass_fds=()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stackgen", "render", "stack.yaml"],
        cwd=out,
        env=dict(os.environ, PYTHONPATH=str(HOOK), **env),
        capture_output=True,
        text=True,
        timeout=120,
        pass_fds=pass_fds,
    )


def count_operations(out: Path) -> int:
    """How many fsync/replace/link/unlink calls one whole render makes."""
    read_end, write_end = os.pipe()
    try:
        proc = run_hooked(out, {"STACKGEN_TEST_COUNT_FD": str(write_end)}, pass_fds=(write_end,))
        os.close(write_end)
        assert proc.returncode == 0, proc.stderr
        count = 0
        while chunk := os.read(read_end, 4096):
            count += len(chunk)
        return count
    finally:
        os.close(read_end)


def test_a_render_killed_at_each_operation_leaves_nothing_the_next_render_does_not_sweep(tmp_path):
    """Deterministic where the test above samples: render A -> B (which creates files A does not
    render) is killed just before each of its file operations in turn, and then a render of A,
    which does not know B's new files, must leave exactly A's tree: no temp file, whatever was
    being staged when the kill came, and no conflict."""
    a = expected_files(SPEC_A, tmp_path)
    out = tmp_path / "project"
    out.mkdir()
    spec = out / "stack.yaml"
    spec.write_text(SPEC_B)
    assert run_hooked(out, {}).returncode == 0
    spec.write_text(SPEC_A)
    assert run_hooked(out, {}).returncode == 0
    spec.write_text(SPEC_B)
    total = count_operations(out)  # A -> B, run to its end
    assert total >= 10, total
    for n in range(1, total + 1):
        spec.write_text(SPEC_A)
        repair = run_hooked(out, {})
        assert repair.returncode == 0, f"killed at operation {n}: the next render failed:\n{repair.stderr}"
        assert not temp_files(out), f"killed at operation {n}: left {temp_files(out)}"
        for rel, want in a.items():
            assert (out / rel).read_bytes() == want, f"killed at operation {n}: {rel}"
        assert sorted(json.loads((out / ".stackgen/state.json").read_text())["files"]) == sorted(a)
        spec.write_text(SPEC_B)
        killed = run_hooked(out, {"STACKGEN_TEST_DIE_AT": str(n)})
        assert killed.returncode == 137, f"operation {n} of {total} was never reached:\n{killed.stderr}"
    spec.write_text(SPEC_A)
    assert run_hooked(out, {}).returncode == 0 and not temp_files(out)
