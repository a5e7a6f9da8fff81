"""The fast paths of issue 11 (speed) compute exactly what the code they replaced did."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
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


def _all_words():
    """Every charset.Word of the code base (found in memory: one added anywhere is tested too)."""
    import gc
    import importlib
    import pkgutil

    import stackgen
    from stackgen.charset import Word

    for info in pkgutil.walk_packages(stackgen.__path__, "stackgen."):
        if info.name != "stackgen.__main__":  # that one runs the CLI
            importlib.import_module(info.name)
    return sorted({id(o): o for o in gc.get_objects() if isinstance(o, Word)}.values(), key=lambda w: w.pattern)


WORDS = _all_words()


def test_the_words_are_found():
    patterns = {w.pattern for w in WORDS}
    assert {r"[a-z][a-z0-9-]{0,62}", r"[A-Za-z_][A-Za-z0-9_'-]*", r"[a-z_][a-z0-9_]{0,62}", r"[A-Za-z0-9_@%+=:,./-]+"} <= patterns
    assert len(WORDS) >= 6


@pytest.mark.parametrize("word", WORDS, ids=lambda w: w.pattern)
@given(data=st.data())
def test_a_word_matches_what_its_pattern_matches(word, data):
    near = word.first + word.rest + "-_.:/%@'\" Aa0é\n\t\u0660"  # its own characters and their neighbours
    text = data.draw(st.one_of(st.text(alphabet=near, max_size=80), st.text(max_size=8), st.from_regex(word.pattern, fullmatch=True)))
    assert word.fullmatch(text) == (re.fullmatch(word.pattern, text) is not None), repr(text)


@pytest.mark.parametrize("word", WORDS, ids=lambda w: w.pattern)
def test_a_word_at_its_length_limit(word):
    """The lengths around the limit, which random text seldom reaches."""
    for n in range(1, (word.max_len or 100) + 3):
        for text in (word.first[0] + word.rest[0] * (n - 1), word.first[-1] + word.rest[-1] * (n - 1)):
            assert word.fullmatch(text) == (re.fullmatch(word.pattern, text) is not None), (n, text)


@given(st.one_of(st.text(alphabet="+-0123456789x\u0660 _", max_size=8), st.text(max_size=4)))
def test_decimal_as_its_pattern(text):
    from stackgen.charset import decimal

    assert decimal(text) == (re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", text) is not None), repr(text)


@given(st.text())
def test_sh_dquoted_as_the_substitution(text):
    if "\x00" not in text:
        assert escape.sh_dquoted(text) == re.sub(r'([\\"$`])', r"\\\1", text)


def test_hm_quadlet_env_refuses_what_the_pattern_finds():
    for ch in EVERY_CHAR:
        if ch in "\n\r" or checks.control_char(ch):
            continue  # refused earlier, by the unit checks
        for text in (ch, f"a{ch}b"):
            try:
                escape.hm_quadlet_env(text)
                refused = False
            except ValueError:
                refused = True
            assert refused == (re.search(r"[\s\"'\\]", text) is not None), repr(text)


@pytest.mark.parametrize("pattern", ["[^a][a]*", "[a-z]{1,3}", "[a-z]", r"[\d]+", "[a-z][a-z](x)*", "[a-z][a-z]{0,n}", "[]+", "[a-z][é]*", "[a-z"])
def test_a_word_refuses_what_it_cannot_match_exactly(pattern):
    from stackgen.charset import Word

    with pytest.raises(ValueError):
        Word(pattern)
