"""The command line through click's CliRunner: exit codes 0/1/2 and the render workflow."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES
from stackgen.cli import cli


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(EXAMPLES / "ai-stack.yaml", tmp_path / "stack.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_validate_ok(project):
    result = run("validate")
    assert result.exit_code == 0
    assert result.stdout.startswith("stack.yaml: ok (ai-stack: 6 services")  # the 26.05 warning is on stderr


def test_missing_spec_is_exit_1(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("validate")
    assert result.exit_code == 1
    assert result.stderr == "error: no such spec file: stack.yaml\n  hint: create one with 'stackgen init'\n"


@pytest.mark.parametrize(
    "args",
    [["render", "--only", "nope"], ["render", "--bogus"], ["frobnicate"], ["render", "--check", "--force"], ["render", "a.yaml", "b.yaml"]],
)
def test_usage_errors_are_exit_2(project, args):
    result = run(*args)
    assert result.exit_code == 2, result.output


def test_render_then_check_then_drift(project):
    result = run("render")
    assert result.exit_code == 0, result.output
    assert (project / "flake.nix").exists() and (project / "env/mirrors.sh").exists()
    assert run("render", "--check").exit_code == 0

    spec = project / "stack.yaml"
    spec.write_text(spec.read_text().replace("port: 6379", "port: 6380"))
    before = (project / "nix/devshell.nix").read_text()
    result = run("render", "--check")
    assert result.exit_code == 1
    assert "update   nix/devshell.nix" in result.output
    assert (project / "nix/devshell.nix").read_text() == before, "--check must write nothing"

    assert run("render").exit_code == 0
    assert "6380" in (project / "nix/devshell.nix").read_text()
    assert run("render", "--check").exit_code == 0


def test_unchanged_files_are_not_rewritten(project):
    run("render")
    target = project / "flake.nix"
    mtime = target.stat().st_mtime_ns
    result = run("render")
    assert result.exit_code == 0
    assert target.stat().st_mtime_ns == mtime
    assert ": 0 written" in result.output


def test_hand_edit_is_a_conflict_and_force_keeps_a_backup(project):
    run("render")
    target = project / "nix/devshell.nix"
    target.write_text(target.read_text() + "# my edit\n")
    spec = project / "stack.yaml"
    spec.write_text(spec.read_text().replace("PROJECT_MODE: dev", "PROJECT_MODE: prod"))

    result = run("render")
    assert result.exit_code == 1
    assert "nix/devshell.nix: edited since stackgen wrote it; not overwriting it" in result.stderr
    assert target.read_text().endswith("# my edit\n"), "a refused render writes nothing"
    assert "prod" not in (project / "flake.nix").read_text() + target.read_text()

    diff = run("render", "--diff")
    assert diff.exit_code == 1  # changes are pending: --diff exits 1, as git diff --exit-code does
    assert '-# my edit' in diff.output and '+    PROJECT_MODE = "prod";' in diff.output

    result = run("render", "--force")
    assert result.exit_code == 0, result.output
    assert (project / "nix/devshell.nix.orig").read_text().endswith("# my edit\n")
    assert 'PROJECT_MODE = "prod";' in target.read_text()


def test_existing_file_not_written_by_stackgen_is_refused(project):
    (project / "flake.nix").write_text("{ }\n")
    result = run("render")
    assert result.exit_code == 1
    assert "flake.nix: exists, and stackgen did not write it" in result.stderr
    assert (project / "flake.nix").read_text() == "{ }\n"
    assert not (project / "nix").exists()


def test_only_renders_one_target(project):
    result = run("render", "--only", "mirrors")
    assert result.exit_code == 0
    assert (project / "env/mirrors.sh").exists()
    assert not (project / "flake.nix").exists()


def test_output_directory_option(project):
    result = run("render", "-o", "out")
    assert result.exit_code == 0
    assert (project / "out/flake.nix").exists()
    assert not (project / "flake.nix").exists()


def test_help_and_version():
    assert run("--help").exit_code == 0
    result = run("--version")
    assert result.exit_code == 0 and "stackgen, version" in result.output


def test_an_ending_branch_warns_and_renders(tmp_path, monkeypatch):
    """nixos-26.05: a warning on stderr, located at the key, and the render goes on."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stack.yaml").write_text("version: 1\nname: old\nnixpkgs: nixos-26.05\ntargets: [devshell]\n")
    warning = (
        "stack.yaml:3:10: warning: nixpkgs nixos-26.05 reaches its end of life on 2026-12-31: no security fixes after that\n"
        "    3 | nixpkgs: nixos-26.05\n"
        "      |          ^\n"
        "  hint: move to nixpkgs: nixos-26.11 (check the option changes in the README's NixOS section)\n"
    )
    for args in (["validate"], ["render"]):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert result.stderr == warning
    assert "github:NixOS/nixpkgs/nixos-26.05" in (tmp_path / "flake.nix").read_text()


@pytest.mark.parametrize("branch", ["", "nixpkgs: nixos-26.11\n", "nixpkgs: nixos-unstable\n"])
def test_supported_branches_do_not_warn(branch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stack.yaml").write_text(f"version: 1\nname: new\n{branch}targets: [devshell]\n")
    for args in (["validate"], ["render"]):
        result = run(*args)
        assert result.exit_code == 0 and result.stderr == "", result.output
    want = branch.removeprefix("nixpkgs: ").strip() or "nixos-26.11"  # the default
    assert f"github:NixOS/nixpkgs/{want}" in (tmp_path / "flake.nix").read_text()
