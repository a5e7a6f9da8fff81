"""The unchanged re-render shortcut: taken only when the full pipeline would find nothing to do."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES
from stackgen import freshness
from stackgen.cli import cli


@pytest.fixture
def project(tmp_path, monkeypatch):
    # On the default branch: a spec without warnings (test_a_warning_... covers the others).
    text = (EXAMPLES / "ai-stack.yaml").read_text()
    assert "nixpkgs: nixos-26.05\n" in text
    (tmp_path / "stack.yaml").write_text(text.replace("nixpkgs: nixos-26.05\n", ""))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STACKGEN_NO_CACHE", raising=False)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_unchanged_render_and_check_take_the_shortcut(project, monkeypatch):
    assert run("render").exit_code == 0
    state = json.loads((project / ".stackgen/state.json").read_text())
    assert state["render_key"] == freshness.render_key((project / "stack.yaml").read_bytes())
    count = len(state["files"])
    assert count >= 5

    def boom(*_a, **_k):
        raise AssertionError("the full render ran")

    monkeypatch.setattr("stackgen.render.render_tree", boom)
    again = run("render")
    assert again.exit_code == 0 and again.output == f".: 0 written, {count} unchanged, 0 removed\n"
    check = run("render", "--check")
    assert check.exit_code == 0 and check.output == f".: up to date ({count} files)\n"


def test_a_warning_is_printed_on_every_render(project, monkeypatch):
    """The shortcut prints the warnings the full render printed (recorded with its key: they
    depend on nothing else), under the spec's name as this command gives it."""
    shutil.copy(EXAMPLES / "ai-stack.yaml", project / "stack.yaml")  # nixos-26.05
    first = run("render")
    assert first.exit_code == 0 and "stack.yaml:7:10: warning: nixpkgs nixos-26.05 reaches its end of life" in first.stderr
    count = len(json.loads((project / ".stackgen/state.json").read_text())["files"])

    def boom(*_a, **_k):
        raise AssertionError("the full render ran")

    monkeypatch.setattr("stackgen.render.render_tree", boom)
    again = run("render")
    assert again.exit_code == 0 and again.stderr == first.stderr
    assert again.stdout == f".: 0 written, {count} unchanged, 0 removed\n"
    check = run("render", "--check")
    assert check.exit_code == 0 and check.stderr == first.stderr and check.stdout == f".: up to date ({count} files)\n"
    named = run("render", str(project / "stack.yaml"))
    assert named.stderr == first.stderr.replace("stack.yaml:7:10", f"{project / 'stack.yaml'}:7:10")


def test_recorded_warnings_reach_the_terminal_escaped(project, monkeypatch):
    """A state file is not trusted: a recorded warning with terminal escapes prints them as
    text (Problem.format), as a spec's own text would."""
    shutil.copy(EXAMPLES / "ai-stack.yaml", project / "stack.yaml")
    assert run("render").exit_code == 0
    path = project / ".stackgen/state.json"
    data = json.loads(path.read_text())
    data["warnings"][0].update(message="\x1b]0;pwned\x07\x1b[31mred", hint="\u202eevil")
    path.write_text(json.dumps(data))
    again = run("render")
    assert again.exit_code == 0 and "\x1b" not in again.stderr and "\u202e" not in again.stderr
    assert "\\x1b]0;pwned\\x07\\x1b[31mred" in again.stderr and "\\u202eevil" in again.stderr


def test_same_output_as_the_full_pipeline(project, monkeypatch):
    assert run("render").exit_code == 0
    fast = (run("render").output, run("render", "--check").output)
    monkeypatch.setenv("STACKGEN_NO_CACHE", "1")
    assert (run("render").output, run("render", "--check").output) == fast


@pytest.mark.parametrize(
    "change",
    ["edit an output", "delete an output", "symlink an output", "edit the spec", "damage the state", "render --only"],
)
def test_any_change_takes_the_full_pipeline(project, change):
    assert run("render").exit_code == 0
    devshell = project / "nix/devshell.nix"
    if change == "edit an output":
        devshell.write_text(devshell.read_text() + "# mine\n")
    elif change == "delete an output":
        devshell.unlink()
    elif change == "symlink an output":
        real = project / "elsewhere.nix"
        real.write_text(devshell.read_text())
        devshell.unlink()
        os.symlink(real, devshell)
    elif change == "edit the spec":
        spec = project / "stack.yaml"
        spec.write_text(spec.read_text().replace("port: 6379", "port: 6380"))
    elif change == "damage the state":
        (project / ".stackgen/state.json").write_text("{")
    elif change == "render --only":
        spec = project / "stack.yaml"
        spec.write_text(spec.read_text().replace("port: 6379", "port: 6380"))
        assert run("render", "--only", "devshell").exit_code == 0
        assert "render_key" not in json.loads((project / ".stackgen/state.json").read_text())
        spec.write_text(spec.read_text().replace("port: 6380", "port: 6379"))
    result = run("render", "--check")
    assert result.exit_code == 1, result.output


def test_the_key_covers_code_templates_and_spec(tmp_path):
    code, templates = tmp_path / "code", tmp_path / "templates"
    code.mkdir()
    templates.mkdir()
    (code / "a.py").write_text("x = 1\n")
    (templates / "t.j2").write_text("{{ x }}\n")
    roots = (code, templates)
    key = freshness.render_key(b"spec", roots)
    assert freshness.render_key(b"spec", roots) == key
    assert freshness.render_key(b"spec ", roots) != key
    (templates / "t.j2").write_text("{{ y }}\n")
    assert freshness.render_key(b"spec", roots) != key
    key = freshness.render_key(b"spec", roots)
    (code / "b.py").write_text("")
    assert freshness.render_key(b"spec", roots) != key


def test_the_real_roots_hold_the_code_and_the_templates():
    files = {rel.rsplit("/", 1)[-1] for _, rel, _, _ in freshness._listing(freshness.code_roots())}
    assert {"cli.py", "render.py", "escape.py", "mirrordata.py", "devshell.nix.j2"} <= files


def test_a_warning_too_long_to_record_leaves_the_shortcut_off(project, monkeypatch):
    """A warning quoting a spec line longer than the state may hold (a flow-style line can be
    1 MiB) is not recorded, and neither is the key: every render takes the full path and
    warns, and the state stays readable."""
    from stackgen import write

    long_env = "x" * (write.MAX_WARNING_TEXT + 1)
    (project / "stack.yaml").write_text(
        "version: 1\nname: demo\n"
        f'services: {{web: {{kind: container, image: "docker.io/library/nginx:1.27", port: 8080, env: {{A: "{long_env}"}}}}}}\n'
    )
    first = run("render")
    assert first.exit_code == 0 and "warning: " in first.stderr, first.output
    data = json.loads((project / ".stackgen/state.json").read_text())
    assert "render_key" not in data and "warnings" not in data
    again = run("render")
    assert again.exit_code == 0 and again.stderr == first.stderr and "damaged" not in again.output
    assert again.stdout.startswith(".: 0 written, ")
