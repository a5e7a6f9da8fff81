"""The project's own Nix files: they parse, package.nix agrees with pyproject.toml, the lock
pins the branch flake.nix names, and (with a nixpkgs lib) the flake's outputs evaluate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib

import pytest

from conftest import NIX_CONFIG, ROOT

PROJECT_NIX = sorted(p for p in ROOT.glob("**/*.nix") if not {".venv", "tests", "out"} & set(p.relative_to(ROOT).parts))


def test_project_nix_files_exist():
    names = {p.relative_to(ROOT).as_posix() for p in PROJECT_NIX}
    assert {"flake.nix", "nix/package.nix", "modules/nixos/default.nix", "modules/home/default.nix"} <= names


@pytest.mark.parametrize("path", PROJECT_NIX, ids=[p.relative_to(ROOT).as_posix() for p in PROJECT_NIX])
def test_project_nix_file_parses(path, nix):
    nix("--parse", str(path))


def test_package_matches_pyproject(nix):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expr = f"""
      let
        python3Packages = builtins.listToAttrs (map (n: {{ name = n; value = n; }})
          [ "click" "jinja2" "pyyaml" "tomlkit" "httpx" "nvidia-ml-py" "hatchling" "requests" "rich" "typer" "pydantic" ])
          // {{ buildPythonApplication = attrs: attrs; }};
        pkg = import {ROOT}/nix/package.nix {{ lib = {{ }}; inherit python3Packages; }};
      in {{ inherit (pkg) pname version dependencies; mainProgram = pkg.meta.mainProgram; }}
    """
    got = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    assert got["pname"] == project["name"]
    assert got["version"] == project["version"]
    assert got["mainProgram"] == next(iter(project["scripts"]))
    wanted = sorted(re.split(r"[<>=!~ \[]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"])
    assert sorted(got["dependencies"]) == wanted


def test_lock_pins_the_branch_flake_nix_names():
    lock = json.loads((ROOT / "flake.lock").read_text())
    flake = (ROOT / "flake.nix").read_text()
    node = lock["nodes"][lock["nodes"]["root"]["inputs"]["nixpkgs"]]
    branch = re.search(r'nixpkgs\.url = "github:NixOS/nixpkgs/([^"]+)"', flake).group(1)
    assert node["original"] == {"owner": "NixOS", "repo": "nixpkgs", "ref": branch, "type": "github"}
    assert re.fullmatch(r"[0-9a-f]{40}", node["locked"]["rev"])
    assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", node["locked"]["narHash"])


def test_flake_outputs_evaluate(nixpkgs_lib, tmp_path):
    """`nix eval` of the flake itself, nixpkgs replaced by the lib checkout (all that is offline)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    env = dict(os.environ, NIX_CONFIG=NIX_CONFIG)
    # A flake is read from git's index: evaluate a fresh repository holding the current files.
    src = tmp_path / "src"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    for rel in listed.stdout.splitlines():
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes((ROOT / rel).read_bytes())
    subprocess.run(["git", "init", "-q"], cwd=src, check=True)
    subprocess.run(["git", "add", "-A"], cwd=src, check=True)
    override = ["--no-write-lock-file", "--override-input", "nixpkgs", f"path:{nixpkgs_lib.parent if nixpkgs_lib.name == 'lib' else nixpkgs_lib}"]
    modules = {"nixosModules": ["default", "model-fetch", "nvidia"], "homeModules": ["default", "ollama-models"], "homeManagerModules": ["default", "ollama-models"]}
    for attr, want in (("packages", ["aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"]), *modules.items()):
        proc = subprocess.run(
            ["nix", "eval", "--json", *override, f"{src}#{attr}", "--apply", "builtins.attrNames"], capture_output=True, text=True, env=env
        )
        assert proc.returncode == 0, proc.stderr
        names = json.loads(proc.stdout)
        if want is not None:
            assert names == want


OPTIONS = ROOT / "tests" / "nix" / "options"


@pytest.mark.parametrize("kind,mirror,settings", [
    ("nixos", "nixos-26.11.nix", 'stackgen.nvidia.enable = true; stackgen.modelFetch.files.m = { url = "https://example.org/m.gguf"; sha256 = null; path = "/srv/m.gguf"; requiredBy = [ "x.service" ]; };'),
    ("home", "home-26.11.nix", 'services.ollama.enable = true; stackgen.ollamaModels = [ "llama3.2:3b" ];'),
])
def test_exported_default_module_evaluates(kind, mirror, settings, tmp_path, nix, nixpkgs_lib):
    """`default` of the exported modules, switched on, type-checks with nixpkgs' lib.evalModules
    against the option mirrors (what a user's configuration imports from this flake)."""
    user = tmp_path / "user.nix"
    user.write_text(f"{{ imports = [ (import {ROOT}/modules/{kind}).default ]; {settings} }}\n")
    got = nix("--eval", "--strict", "--json", "-E", f"import {OPTIONS}/eval.nix {{ lib = import {nixpkgs_lib}; mirror = {OPTIONS}/{mirror}; module = {user}; }}")
    result = json.loads(got.stdout)
    assert result["failedAssertions"] == []
    if kind == "nixos":
        assert result["warnings"] == ["stackgen.modelFetch.files.m has no sha256: https://example.org/m.gguf is downloaded unverified"]
