"""Hostile input beyond the corpus in tests/specs/invalid/: files too big to commit, the
time and memory a YAML bomb costs, what error output may contain, and CRLF specs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES, SPECS, render_spec
from stackgen.cli import cli
from stackgen.spec.loader import MAX_BYTES

CORPUS = sorted((SPECS / "invalid").glob("*.expected"))


def validate(path: Path):
    result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize(
    "name, body",
    [
        ("huge-comment", lambda n: b"version: 1\nname: demo\n" + b"# " + b"x" * n + b"\n"),
        ("huge-description", lambda n: b"version: 1\nname: demo\ndescription: " + b"y" * n + b"\n"),
        ("huge-binary", lambda n: bytes(range(256)) * (n // 256 + 1)),
    ],
)
def test_files_over_the_size_limit_are_refused_unread(tmp_path, name, body):
    spec = tmp_path / f"{name}.yaml"
    spec.write_bytes(body(MAX_BYTES + 1))
    assert spec.stat().st_size > 1024 * 1024
    result = validate(spec)
    assert result.exit_code == 1
    assert result.stderr == f"{spec}: error: {spec} is larger than 1024 KiB; a stack spec is a small text file\n"


def test_a_spec_just_under_the_limit_is_read(tmp_path):
    spec = tmp_path / "big.yaml"
    filler = b"# " + b"z" * (MAX_BYTES - 200) + b"\n"
    spec.write_bytes(b"version: 1\nname: demo\n" + filler)
    assert spec.stat().st_size <= MAX_BYTES
    result = validate(spec)
    assert result.exit_code == 0, result.output


MEASURE = r"""
import json, resource, sys, time
from pathlib import Path
from stackgen.errors import StackError
from stackgen.spec import load_spec
start = time.monotonic()
try:
    load_spec(Path(sys.argv[1]), "spec")
    outcome = "ok"
except StackError as exc:
    outcome = exc.problems[0].message
print(json.dumps({"seconds": time.monotonic() - start, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "outcome": outcome}))
"""


def measure(spec: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(spec)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("bomb", ["yaml-bomb-billion-laughs", "yaml-bomb-merge-keys", "deep-nesting-flow", "recursive-alias"])
def test_yaml_bombs_cost_bounded_time_and_memory(bomb, tmp_path):
    baseline = measure(EXAMPLES / "ai-stack.yaml")
    assert baseline["outcome"] == "ok"
    got = measure(SPECS / "invalid" / f"{bomb}.yaml")
    assert got["outcome"] != "ok"
    assert got["seconds"] < 5, got
    assert got["maxrss_kib"] - baseline["maxrss_kib"] < 64 * 1024, f"{bomb} took {got['maxrss_kib']} KiB (baseline {baseline['maxrss_kib']})"


def test_a_wide_flow_nesting_of_a_whole_mebibyte_is_refused_quickly(tmp_path):
    spec = tmp_path / "brackets.yaml"
    half = (MAX_BYTES - 100) // 2
    spec.write_text("version: 1\nname: demo\npackages: " + "[" * half + "]" * half + "\n")
    got = measure(spec)
    assert got["outcome"] == "the document is nested too deeply (more than 64 levels)"
    assert got["seconds"] < 5, got


@pytest.mark.parametrize("expected", CORPUS, ids=[p.stem for p in CORPUS])
def test_error_output_cannot_drive_a_terminal(expected):
    """No control character, bidi override or lone surrogate from a spec reaches the
    terminal: they are shown as escapes. (Tabs may appear in quoted source lines.)"""
    text = expected.read_text(encoding="utf-8")
    bad = sorted({ch for ch in text if not (ch.isprintable() or ch in "\n\t")})
    assert not bad, f"{expected.name} prints {bad!r}"
    assert all(len(line) < 400 for line in text.splitlines()), "quoted lines are cut to a window"


def test_crlf_specs_are_valid_and_render_the_same_files(tmp_path):
    """A spec saved with Windows line endings means the same as with Unix ones."""
    text = (EXAMPLES / "ai-stack.yaml").read_text()
    (tmp_path / "lf").mkdir()
    (tmp_path / "crlf").mkdir()
    (tmp_path / "lf/stack.yaml").write_bytes(text.encode())
    (tmp_path / "crlf/stack.yaml").write_bytes(text.replace("\n", "\r\n").encode())
    lf = render_spec(tmp_path / "lf/stack.yaml", tmp_path / "lf")
    crlf = render_spec(tmp_path / "crlf/stack.yaml", tmp_path / "crlf")
    assert lf == crlf
    assert not any("\r" in body for body in crlf.values())
