"""Every spec in tests/specs/invalid/ fails with exactly the message in its .expected file,
exit code 1, no traceback, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import SPECS
from stackgen.cli import cli

INVALID = sorted((SPECS / "invalid").glob("*.yaml"))


def test_the_corpus_is_large_enough():
    assert len(INVALID) >= 60


@pytest.mark.parametrize("spec", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_spec(spec: Path, tmp_path, monkeypatch):
    expected = spec.with_suffix(".expected").read_text()
    (tmp_path / spec.name).write_bytes(spec.read_bytes())
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["validate", spec.name], ["render", spec.name, "-o", "out"]):
        result = runner.invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert result.stderr == expected
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists(), "a spec error must write nothing"
    assert sorted(p.name for p in tmp_path.iterdir()) == [spec.name]
