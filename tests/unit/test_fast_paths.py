"""The fast paths of issue 11 (speed) compute exactly what the code they replaced did."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from stackgen import escape, write
from stackgen.spec import checks

CONTROL_SOURCE = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
EVERY_CHAR = [chr(i) for i in range(0x3000)] + ["\u202e", "\u2066", "\u2069", "\ud800", "\udfff", "\U0001f600"]


def test_control_char_finds_what_the_control_pattern_finds():
    control = re.compile(CONTROL_SOURCE)
    assert checks.CONTROL.pattern == CONTROL_SOURCE
    for ch in EVERY_CHAR:
        for text in (ch, f"ab{ch}cd", f"{ch}\t"):
            got, want = checks.control_char(text), control.search(text)
            assert (got and got.group()) == (want and want.group()), repr(text)


@given(st.text())
def test_nix_str_as_the_per_character_mapping(text):
    mapped = "".join(escape._NIX_ESCAPES.get(ch, ch) for ch in text)
    assert escape.nix_str(text) == f'"{mapped}"'


@given(st.text(max_size=80))
def test_staged_names_as_the_regex_made_them(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("staging")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        name, kept = write._stage(fd, text, b"x", 0o600)
    finally:
        os.close(fd)
    assert kept is None
    assert name.rsplit(".", 2)[0] == re.sub(r"[^A-Za-z0-9._-]", "_", text)[:64]
    assert (folder / name).read_bytes() == b"x"


def test_the_render_path_compiles_control_only_when_a_value_needs_it():
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from stackgen.spec import load_spec, checks\n"
        "load_spec(Path(sys.argv[1]), 'stack.yaml')\n"
        "print('CONTROL' in vars(checks))\n"
    )
    spec = __import__("conftest").ROOT / "examples" / "ai-stack.yaml"
    out = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", "checks.CONTROL was compiled for a spec of printable ASCII"


@given(st.one_of(st.text(max_size=70), st.from_regex(r"[0-9a-f]{64}", fullmatch=True), st.from_regex(r"[0-9a-fA-F\n ]{63,65}", fullmatch=True)))
def test_sha256_hex_as_the_pattern(text):
    from stackgen import safeio

    assert safeio.is_sha256_hex(text) == (re.fullmatch(r"[0-9a-f]{64}", text) is not None)


def test_sha256_hex_refuses_what_is_not_text():
    from stackgen import safeio

    assert not safeio.is_sha256_hex(None) and not safeio.is_sha256_hex(b"0" * 64) and safeio.is_sha256_hex("0" * 64)
