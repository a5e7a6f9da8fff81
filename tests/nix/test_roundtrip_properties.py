"""Property tests: any string the validator accepts comes out of the rendered files as
exactly that string, read back by the real consumer.

- Nix: `nix-instantiate --eval` of flake.nix (description, nixConfig.extra-substituters) and
  nix/devshell.nix (env: the spec's env values, UV_DEFAULT_INDEX, HF_ENDPOINT).
- bash: `source env/mirrors.sh china` sets UV_DEFAULT_INDEX, PIP_INDEX_URL, HF_ENDPOINT and
  NIX_CONFIG from the spec's mirror URLs.
- Ollama model names and llama.cpp model paths (no target of this branch renders them yet):
  through the escape filters every target uses, nix_str and sh_quote, into Nix and bash.

Each hypothesis example is one spec with several values, so one nix-instantiate call checks
many strings. The compose and Quadlet round trips are in tests/unit/test_container_roundtrip.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import require_tool, yaml_str
from stackgen import escape
from stackgen.errors import StackError
from stackgen.render import render_tree
from stackgen.spec import load_spec
from stackgen.spec.checks import CONTROL
from stackgen.spec.checks import OLLAMA_MODEL
from test_parse_and_escape import STUB_PKGS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
ENV_NAMES = [f"VALUE_{i}" for i in range(8)]

# Characters that mean something to Nix, the shell, YAML or INI, mixed with anything else.
META = list("${}\"'\\`\n\t;|&<>*?~#!%=:@[]()/, ") + ["${", "$${", "''", "'''", "''$", "''\\", "\\n", "%%", "%n"]
# Any character but the ones the validator refuses (controls, line separators, bidi overrides).
ANY = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
TEXT = st.lists(st.one_of(st.sampled_from(META), ANY), max_size=24).map("".join)
# What a URL holds unencoded (RFC 3986, less '?', '#' and "'"), '%' only as a %XX escape.
URL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&()*+,;=:@/"
URL = st.builds(
    lambda host, path: f"https://{host}.example.org/{path}",
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
    st.lists(st.one_of(st.sampled_from(list(URL_CHARS)), st.sampled_from(["%25", "%7E", "%2F", "%20", "%41"])), max_size=30).map("".join),
)


def spec_text(description: str, env: list[str], pypi: str, hf: str, caches: list[str]) -> str:
    lines = ["version: 1", "name: roundtrip", f"description: {yaml_str(description)}", "systems: [x86_64-linux]", "packages: [git]"]
    lines += ["mirrors:", f"  pypi: {yaml_str(pypi)}", f"  huggingface: {yaml_str(hf)}", "  nix:"]
    lines += [f"    - {yaml_str(url)}" for url in caches]
    lines += ["env:"] + [f"  {name}: {yaml_str(value)}" for name, value in zip(ENV_NAMES, env)]
    lines += ["targets: [devshell, mirrors]"]
    return "\n".join(lines) + "\n"


def render_or_none(text: str, where: Path) -> dict[str, str] | None:
    """Render the spec into `where`, or None when the validator refuses it."""
    spec = where / "stack.yaml"
    spec.write_text(text)
    try:
        files = render_tree(load_spec(spec, "stack.yaml"))
    except StackError:
        return None
    for f in files:
        (where / f.path).parent.mkdir(parents=True, exist_ok=True)
        (where / f.path).write_text(f.text)
    return {f.path: f.text for f in files}


@pytest.fixture(scope="module")
def stub(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stub") / "stub-pkgs.nix"
    path.write_text(STUB_PKGS)
    return path


@pytest.fixture(scope="module")
def bash() -> str:
    return require_tool("bash")


def accepted_text(value: str, *, newlines: bool) -> bool:
    return CONTROL.search(value) is None and (newlines or ("\n" not in value and "\t" not in value))


@SETTINGS
@given(
    description=TEXT,
    env=st.lists(TEXT, min_size=len(ENV_NAMES), max_size=len(ENV_NAMES)),
    pypi=URL,
    hf=URL,
    caches=st.lists(URL, min_size=1, max_size=3, unique=True),
)
def test_spec_strings_survive_nix_and_bash(description, env, pypi, hf, caches, tmp_path_factory, nix, stub, bash):
    assume(accepted_text(description, newlines=True) and all(accepted_text(v, newlines=True) for v in env))
    where = tmp_path_factory.mktemp("rt")
    files = render_or_none(spec_text(description, env, pypi, hf, caches), where)
    assert files is not None, "the validator refused values it should accept"

    expr = f"""
      let flake = import {where}/flake.nix; shell = import {where}/nix/devshell.nix {{ pkgs = import {stub}; }};
      in {{ description = flake.description; caches = flake.nixConfig.extra-substituters; env = shell.env; }}
    """
    got = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    assert got["description"] == (description or "roundtrip")
    assert got["caches"] == caches
    assert [got["env"][name] for name in ENV_NAMES] == env
    assert got["env"]["UV_DEFAULT_INDEX"] == pypi and got["env"]["HF_ENDPOINT"] == hf

    script = f'source "{where}/env/mirrors.sh" china >/dev/null; printf "%s\\0" "$UV_DEFAULT_INDEX" "$PIP_INDEX_URL" "$HF_ENDPOINT" "$NIX_CONFIG"'
    out = subprocess.run([bash, "--norc", "--noprofile", "-c", script], capture_output=True, env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    index, pip, endpoint, nix_config = out.decode().split("\0")[:4]
    assert (index, pip, endpoint) == (pypi, pypi, hf)
    substituters = nix_config.splitlines()[0].removeprefix("extra-substituters = ").split(" ")
    assert substituters[-len(caches) :] == caches


def path_like(value: str) -> bool:
    return not any(part in ("", ".", "..") for part in value.split("/")[1:])


# What the validator lets through for model names (its regex; the test checks the validator
# accepts each) and model paths (absolute, no whitespace, quote, backslash or '$'; '%', ';',
# '#', '&', '(' ... are allowed).
MODEL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9][A-Za-z0-9._-]*)?", fullmatch=True).filter(lambda m: len(m) <= 256)  # the validator's max_len
PATH = st.lists(st.text(alphabet=st.characters(blacklist_characters="/\"\\$", blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=12), min_size=1, max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)


@SETTINGS
@given(models=st.lists(MODEL, min_size=4, max_size=8), paths=st.lists(PATH.filter(path_like), min_size=4, max_size=8))
def test_model_names_and_paths_survive_the_escape_filters(models, paths, nix, bash, tmp_path_factory):
    from stackgen.spec.checks import Collector, INVALID, abspath
    from stackgen.spec.loader import Document

    c = Collector(Document("x", "", None))
    assert all(OLLAMA_MODEL(c, ("m",), m) is not INVALID for m in models), c.problems
    paths = [p for p in paths if CONTROL.search(p) is None and abspath(c, ("p",), p) is not INVALID]
    assume(paths)
    values = models + paths
    got = json.loads(nix("--eval", "--strict", "--json", "-E", escape.nix_list(values)).stdout)
    assert got == values
    script = "printf '%s\\0' " + " ".join(escape.sh_quote(v) for v in values)
    out = subprocess.run([bash, "--norc", "--noprofile", "-c", script], capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == values
