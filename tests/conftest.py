"""Shared fixtures. Real tools (nix, podman, bash) are used where they exist; a test that
needs one skips with a reason where it is absent, except under CI=true, where a missing
tool is a failure: .ci/run installs them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPECS = ROOT / "tests" / "specs"
GOLDEN = ROOT / "tests" / "golden"
NIX_CONFIG = "experimental-features = nix-command flakes\nsubstituters ="

# CI runs the property tests on a fixed sequence of examples, so that its verdict does not
# depend on chance; run them locally (or tools/fuzz_loader.py) to explore new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/ from the current renderer")


def require_tool(name: str, why: str = "") -> str:
    # Also look beside the running python: `.venv/bin/python -m pytest` runs without an
    # activated venv, and tests/install-deps.sh installs some tools into .venv/bin.
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        message = f"{name} is not installed{': ' + why if why else ''} (tests/install-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def nix():
    """Run nix-instantiate offline; returns a function (args) -> CompletedProcess."""
    require_tool("nix-instantiate", "every generated .nix file is parsed by real Nix")
    env = dict(os.environ, NIX_CONFIG=NIX_CONFIG)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["nix-instantiate", *args], capture_output=True, text=True, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"nix-instantiate {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def nixpkgs_lib():
    """A checkout of nixpkgs' lib/ (nix-community/nixpkgs.lib), from STACKGEN_NIXPKGS_LIB."""
    path = os.environ.get("STACKGEN_NIXPKGS_LIB")
    if not path:
        pytest.skip("STACKGEN_NIXPKGS_LIB is not set: point it at a checkout of nix-community/nixpkgs.lib")
    lib = Path(path)
    if (lib / "lib" / "default.nix").exists():
        lib = lib / "lib"
    if not (lib / "default.nix").exists():
        pytest.fail(f"STACKGEN_NIXPKGS_LIB={path} holds no lib/default.nix")
    return lib


def golden_cases() -> dict[str, Path]:
    """Golden case name -> spec: the shipped examples and tests/specs/valid/*.yaml."""
    cases = {p.stem: p for p in sorted(EXAMPLES.glob("*.yaml"))}
    cases.update({p.stem: p for p in sorted((SPECS / "valid").glob("*.yaml"))})
    return cases


def render_spec(spec: Path, out: Path) -> dict[str, str]:
    """Render `spec` into `out` through the real pipeline; returns {path: text} of the outputs."""
    from stackgen.render import render_tree
    from stackgen.spec import load_spec
    from stackgen import write

    loaded = load_spec(spec, spec.name)
    files = render_tree(loaded)
    write.apply(write.plan(out, files, loaded.source_sha256))
    return {f.path: f.text for f in files}


def render_text(text: str, out: Path) -> dict[str, str]:
    spec = out / "stack.yaml"
    out.mkdir(parents=True, exist_ok=True)
    spec.write_text(text)
    return render_spec(spec, out)


def yaml_str(value: str) -> str:
    """A YAML double-quoted scalar for any string: printable ASCII as is, the rest escaped
    (so a test can put control characters, surrogates or emoji into a spec exactly)."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'
