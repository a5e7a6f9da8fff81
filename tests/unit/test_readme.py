"""The README's first fenced block is the contract: two command lines, the second run by CI."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT


def first_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_first_block_has_exactly_two_commands():
    assert len(first_block()) == 2


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert first_block()[1] in ci


def test_install_command_renders_a_shipped_example():
    install = first_block()[0]
    spec = re.search(r"stackgen render (\S+)", install).group(1)
    assert (ROOT / spec).is_file()


def test_shipped_examples_are_the_reference_stacks():
    shared = ROOT.parent / "shared" / "examples"
    if not shared.is_dir():
        pytest.skip(f"{shared} is not beside this checkout")
    for ref in sorted(shared.glob("*.yaml")):
        assert (ROOT / "examples" / ref.name).read_bytes() == ref.read_bytes(), ref.name
