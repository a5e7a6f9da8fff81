"""What a new user trips over in the first hour (issue 13): each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from stackgen.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_counts_one_service_in_the_singular(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "stack.yaml", "version: 1\nname: demo\nservices:\n  ollama: {}\n")
    result = run("validate", "stack.yaml")
    assert result.exit_code == 0
    assert "(demo: 1 service, targets" in result.output
    write(tmp_path / "stack.yaml", "version: 1\nname: demo\nservices:\n  ollama: {}\n  redis: {}\n")
    assert "(demo: 2 services, targets" in run("validate", "stack.yaml").output


def test_a_quoted_postgres_version_means_the_number(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = "version: 1\nname: demo\ntargets: [compose]\nservices:\n  postgres: {version: %s, databases: [app], password_file: /run/secrets/pg}\n"
    write(tmp_path / "a.yaml", base % "16")
    write(tmp_path / "b.yaml", base % '"16"')
    assert run("render", "a.yaml", "-o", "a").exit_code == 0
    result = run("render", "b.yaml", "-o", "b")
    assert result.exit_code == 0, result.output
    compose_a = (tmp_path / "a" / "compose.yaml").read_text()
    assert "postgres:16" in compose_a or "pg16" in compose_a, compose_a
    assert (tmp_path / "b" / "compose.yaml").read_text() == compose_a


def test_a_quoted_unsupported_postgres_version_names_the_supported_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "s.yaml", 'version: 1\nname: demo\nservices:\n  postgres: {version: "12"}\n')
    result = run("validate", "s.yaml")
    assert result.exit_code == 1
    assert "services.postgres.version '12' is not supported; use one of: 14, 15, 16, 17, 18" in result.stderr
    assert "did you mean" not in result.stderr


# --- render from inside a tree, --check's advice, --diff's exit codes and a closed pipe -------

import os
import shutil
import subprocess
import sys

from conftest import EXAMPLES


def stackgen(*args: str, cwd: Path, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackgen", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)


def test_render_and_check_work_from_inside_a_tree_rendered_with_o(tmp_path):
    shutil.copy(EXAMPLES / "minimal.yaml", tmp_path / "stack.yaml")
    assert stackgen("render", "-o", "out", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    check = stackgen("render", "--check", cwd=out)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(".: up to date")
    assert "spec: ../stack.yaml (recorded in .stackgen/state.json)" in check.stderr
    # the record follows the spec: a change to it is drift, and a plain render fixes it
    spec = tmp_path / "stack.yaml"
    spec.write_text(spec.read_text().replace("packages: [", "packages: [ripgrep, ", 1) if "packages: [" in spec.read_text() else spec.read_text() + "packages: [ripgrep]\n")
    assert stackgen("render", "--check", cwd=out).returncode == 1
    assert stackgen("render", cwd=out).returncode == 0
    assert "pkgs.ripgrep" in (out / "nix" / "devshell.nix").read_text()
    assert stackgen("render", "--check", cwd=out).returncode == 0
    assert not (out / "stack.yaml").exists() and not (out / "out").exists()


def test_without_a_spec_or_a_record_the_error_is_the_missing_spec(tmp_path):
    result = stackgen("render", "--check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "error: no such spec file: stack.yaml\n  hint: create one with 'stackgen init'\n"


def test_check_on_a_hand_edited_file_says_what_resolves_it(tmp_path):
    shutil.copy(EXAMPLES / "minimal.yaml", tmp_path / "stack.yaml")
    assert stackgen("render", cwd=tmp_path).returncode == 0
    with open(tmp_path / "flake.nix", "a") as fh:
        fh.write("# mine\n")
    result = stackgen("render", "--check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "1 file out of date in .; 1 file edited by hand (flake.nix): 'stackgen render --diff' shows the changes,"
        " and 'stackgen render --force' writes them, keeping each edited file as <file>.orig"
    )
    assert "run 'stackgen render'" not in result.stderr  # which would only refuse again


def test_diff_exits_1_when_something_would_change_and_0_when_nothing_would(tmp_path):
    shutil.copy(EXAMPLES / "minimal.yaml", tmp_path / "stack.yaml")
    pending = stackgen("render", "--diff", cwd=tmp_path)
    assert pending.returncode == 1 and pending.stdout.startswith("--- ")
    assert stackgen("render", cwd=tmp_path).returncode == 0
    clean = stackgen("render", "--diff", cwd=tmp_path)
    assert clean.returncode == 0 and clean.stdout == ""


def test_a_closed_pipe_ends_diff_quietly(tmp_path):
    # the reference stack on the default branch: nothing else (no end-of-life warning) on stderr
    text = (EXAMPLES / "ai-stack.yaml").read_text()
    assert "nixpkgs: nixos-26.05\n" in text
    (tmp_path / "stack.yaml").write_text(text.replace("nixpkgs: nixos-26.05\n", ""))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte: every write meets EPIPE
    try:
        result = stackgen("render", "--diff", cwd=tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141  # as a program killed by SIGPIPE
    bash = shutil.which("bash")
    piped = subprocess.run([bash, "-c", f'"{sys.executable}" -m stackgen render --diff | head -1; echo "status=${{PIPESTATUS[0]}}"'],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert piped.stderr == ""
    assert piped.stdout.splitlines()[0].startswith("--- ")
    assert piped.stdout.splitlines()[-1] in ("status=141", "status=1")  # 1: all of it fit in the pipe before head left


def git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def test_render_in_a_git_work_tree_names_the_untracked_flake_files(tmp_path):
    if shutil.which("git") is None:
        import pytest

        pytest.skip("git is not installed")
    project = tmp_path / "proj"
    project.mkdir()
    git("init", "-q", cwd=project)
    shutil.copy(EXAMPLES / "minimal.yaml", project / "stack.yaml")
    first = stackgen("render", cwd=project)
    assert first.returncode == 0
    notes = [ln for ln in first.stderr.splitlines() if ln.startswith("note:")]
    nix_files = sorted(str(p.relative_to(project)) for p in [project / "flake.nix", *(project / "nix").rglob("*")] if p.is_file())
    assert notes == [f"note: Nix flakes see only files git knows, and {len(nix_files)} rendered files are not added yet; "
                     f"before 'nix develop': git add {' '.join(nix_files)}"], first.stderr
    git("add", "flake.nix", "nix", cwd=project)  # added, not even committed: that is what flakes need
    (project / "stack.yaml").write_text((project / "stack.yaml").read_text() + "packages: [ripgrep]\n")
    second = stackgen("render", cwd=project)
    assert second.returncode == 0, second.stderr
    assert "note:" not in second.stderr
    # outside a git work tree nothing is said
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(EXAMPLES / "minimal.yaml", plain / "stack.yaml")
    assert "note:" not in stackgen("render", cwd=plain).stderr


# --- a hostile tree: its state file and git config are data (found by review) ----------------

import json


def rendered_tree(tmp_path: Path) -> Path:
    shutil.copy(EXAMPLES / "minimal.yaml", tmp_path / "stack.yaml")
    assert stackgen("render", cwd=tmp_path).returncode == 0
    return tmp_path


def with_state(tree: Path, **changes) -> None:
    path = tree / ".stackgen" / "state.json"
    state = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "files":
            state["files"].update(value)
        else:
            state[key] = value
    path.write_text(json.dumps(state))


def test_a_state_entry_outside_the_rendered_folders_is_refused_and_nothing_is_removed(tmp_path):
    from stackgen import write

    tree = rendered_tree(tmp_path)
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    targets = {}
    for rel in (".git/HEAD", "stack.yaml"):
        data = (tree / rel).read_bytes()
        targets[rel] = {"sha256": write.sha256(data), "target": "devshell", "spec_sha256": "0" * 64, "stackgen": "0.1.0"}
    with_state(tree, files=targets)
    result = stackgen("render", cwd=tree)
    assert result.returncode == 1
    assert "state.json is damaged (it lists the path '.git/HEAD', which stackgen never writes)" in result.stderr
    assert (tree / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n" and (tree / "stack.yaml").exists()


def test_every_rendered_path_lies_under_an_output_root():
    from conftest import golden_cases
    from stackgen.outputs import is_output
    from stackgen.render import render_tree
    from stackgen.spec import load_spec

    for name, spec in golden_cases().items():
        paths = [f.path for f in render_tree(load_spec(spec, spec.name))]
        assert paths and all(is_output(p) for p in paths), (name, [p for p in paths if not is_output(p)])


def test_a_recorded_spec_is_a_relative_yaml_path_and_a_regular_file(tmp_path):
    tree = rendered_tree(tmp_path)
    (tree / "stack.yaml").rename(tree / "s.yaml")
    for hostile in ("/etc/shadow", "../../../../etc/passwd", "a/../../b.yaml", "x\x1b]0;T\x07.yaml"):
        with_state(tree, spec=hostile)
        result = stackgen("render", "--check", cwd=tree)
        assert result.returncode == 1, hostile
        assert "is damaged (a malformed spec path)" in result.stderr and "\x1b" not in result.stderr + result.stdout
    os.mkfifo(tree / "f.yaml")
    with_state(tree, spec="f.yaml")
    result = stackgen("render", "--check", cwd=tree)  # a FIFO is refused at once (the call has a deadline)
    assert result.returncode == 1
    assert "error: f.yaml is a FIFO, not a spec file" in result.stderr, result.stderr


def test_control_characters_in_state_paths_are_refused_not_printed(tmp_path):
    tree = rendered_tree(tmp_path)
    rel = "nix/gone\x1b]0;PWNED\x07"
    with_state(tree, files={rel: {"sha256": "0" * 64, "target": "devshell", "spec_sha256": "0" * 64, "stackgen": "0.1.0"}})
    result = stackgen("render", cwd=tree)
    assert result.returncode == 1
    assert "\x1b" not in result.stdout + result.stderr and "\\x1b" in result.stderr


def test_the_trees_git_config_runs_nothing(tmp_path):
    if shutil.which("git") is None:
        import pytest

        pytest.skip("git is not installed")
    project = tmp_path / "proj"
    project.mkdir()
    git("init", "-q", cwd=project)
    marker = tmp_path / "ran"
    git("config", "core.fsmonitor", f"echo ran >> {marker}; false", cwd=project)
    shutil.copy(EXAMPLES / "minimal.yaml", project / "stack.yaml")
    result = stackgen("render", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "git add flake.nix" in result.stderr  # the check still ran
    assert not marker.exists()
