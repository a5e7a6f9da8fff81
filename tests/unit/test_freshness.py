"""The unchanged re-render shortcut: taken only when the full pipeline would find nothing to do."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

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


# --- the code digest's cache: equal to hashing the contents, and never trusted blindly --------------


def reference_digest(roots) -> str:
    """The code digest by its definition, with os.walk and Path sorting as the key was first computed."""
    h = hashlib.sha256()
    for index, root in enumerate(roots):
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            found += [Path(dirpath) / n for n in filenames if not n.endswith((".pyc", ".orig"))]
        for path in sorted(found):
            h.update(f"{index}\0{path.relative_to(root)}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@pytest.fixture
def code(tmp_path, monkeypatch):
    """Two roots of files, a private cache home, and a clock 10 s ahead: every file has settled."""
    (tmp_path / "xdg").mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("STACKGEN_NO_CACHE", raising=False)
    roots = (tmp_path / "code", tmp_path / "templates")
    for root in roots:
        (root / "sub").mkdir(parents=True)
    (roots[0] / "a.py").write_text("x = 1\n")
    (roots[0] / "sub" / "b.py").write_text("y = 2\n")
    (roots[1] / "t.j2").write_text("{{ x }}\n")
    later(monkeypatch, 10)
    return roots


def later(monkeypatch, seconds: float) -> None:
    real = time.time_ns
    monkeypatch.setattr(freshness, "_clock", lambda: real() + int(seconds * 1e9))


def entries(tmp_path) -> list[Path]:
    folder = tmp_path / "xdg" / "stackgen" / "keys"
    return sorted(folder.iterdir()) if folder.exists() else []


def no_hashing(monkeypatch) -> None:
    def boom(_files):
        raise AssertionError("the contents were hashed: the cache was not used")

    monkeypatch.setattr(freshness, "_content_digest", boom)


def test_the_cached_digest_is_the_content_digest(code, tmp_path, monkeypatch):
    key = freshness.render_key(b"spec", code)
    (entry,) = entries(tmp_path)
    assert entry.stat().st_mode & 0o777 == 0o600 and entry.parent.stat().st_mode & 0o777 == 0o700
    with monkeypatch.context() as m:
        no_hashing(m)
        assert freshness.code_digest(code) == reference_digest(code)
        assert freshness.render_key(b"spec", code) == key
    monkeypatch.setenv("STACKGEN_NO_CACHE", "1")
    assert freshness.render_key(b"spec", code) == key


def test_the_real_code_digest_matches_its_definition(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("STACKGEN_NO_CACHE", raising=False)
    later(monkeypatch, 10)
    roots = freshness.code_roots()
    assert freshness.code_digest(roots) == reference_digest(roots)
    no_hashing(monkeypatch)
    assert freshness.code_digest(roots) == reference_digest(roots)


NAMES = st.sampled_from(["a", "a-b", "a.b", "b", "__pycache__", "x.pyc", "x.orig", "Z", "é"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(tree=[(["a", "b"], b"1"), (["x"], b""), (["a-b"], b"2")])  # by components "a/b" < "a-b"; as text the reverse
@given(tree=st.lists(st.tuples(st.lists(NAMES, min_size=1, max_size=3), st.binary(max_size=20)), max_size=8))
def test_the_digest_is_its_definition_for_any_tree(tree, tmp_path_factory, monkeypatch):
    """The scan picks, skips and orders files as os.walk and Path sorting did (a-b / a.b / a/...)."""
    base = tmp_path_factory.mktemp("tree")
    monkeypatch.setenv("XDG_CACHE_HOME", str(base))
    later(monkeypatch, 10)
    roots = (base / "r0", base / "r1")
    for root in roots:
        root.mkdir()
    for i, (parts, data) in enumerate(tree):
        path = roots[i % 2].joinpath(*parts)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue  # a file where a folder is wanted, or the reverse: not this tree
    (roots[0] / "linked").symlink_to(roots[1], target_is_directory=True)  # os.walk does not follow it
    assert freshness.code_digest(roots) == reference_digest(roots)  # computed, and stored
    with monkeypatch.context() as m:
        no_hashing(m)
        assert freshness.code_digest(roots) == reference_digest(roots)  # from the cache


def wait_for_a_new_ctime(near: Path) -> None:
    """Until a file changed now gets a later ctime than `near` has: timestamps come from a
    coarse clock (a few ms), and the edit below must not fall into the same tick."""
    probe = near.with_name("probe")
    while True:
        probe.write_bytes(b"")
        if probe.stat().st_ctime_ns > near.stat().st_ctime_ns:
            probe.unlink()
            return


def test_an_edit_that_keeps_size_and_mtime_changes_the_key(code, tmp_path, monkeypatch):
    target = code[0] / "a.py"
    key = freshness.render_key(b"spec", code)
    with monkeypatch.context() as m:
        no_hashing(m)
        assert freshness.render_key(b"spec", code) == key  # the control: it is the cache that answers
    before = target.stat()
    wait_for_a_new_ctime(target)
    target.write_text("x = 2\n")  # the same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same mtime; ctime moves on
    assert (target.stat().st_size, target.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    changed = freshness.render_key(b"spec", code)
    assert changed != key
    assert freshness.code_digest(code) == reference_digest(code)


@pytest.mark.parametrize("how", ["every file just written", "one file written within 2 s of the read"])
def test_a_fresh_file_is_never_cached(code, tmp_path, monkeypatch, how):
    if how == "every file just written":
        monkeypatch.setattr(freshness, "_clock", time.time_ns)
    else:  # the clock is 10 s ahead: this one file is 1 s old when read
        soon = time.time_ns() + 9 * 10**9
        os.utime(code[1] / "t.j2", ns=(soon, soon))
    assert freshness.code_digest(code) == reference_digest(code)
    assert entries(tmp_path) == []
    later(monkeypatch, 20)  # now every file has settled: the control, it is stored
    freshness.code_digest(code)
    assert len(entries(tmp_path)) == 1


def plant(code, tmp_path, how: str) -> str:
    """Put a hostile entry where the cache looks; returns the digest it would make the key use."""
    assert freshness.code_digest(code) == reference_digest(code)
    (entry,) = entries(tmp_path)
    signature = freshness._signature(freshness._listing(code))
    wrong = hashlib.sha256(b"not the code").hexdigest()
    text = {
        "wrong length": f"{signature} {wrong[:63]}\n",
        "not hex": f"{signature} {'z' * 64}\n",
        "upper-case hex": f"{signature} {wrong.upper()}\n",
        "three words": f"{signature} {wrong} {wrong}\n",
        "not ASCII": f"{signature} {wrong[:62]}é\n",
        "huge": f"{signature} {wrong}\n" + " " * (1 << 20),
    }
    entry.unlink()
    if how in text:
        entry.write_text(text[how])
        entry.chmod(0o600)
    elif how == "a symbolic link":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.write_text(f"{signature} {wrong}\n")
        elsewhere.chmod(0o600)
        entry.symlink_to(elsewhere)
    elif how == "a directory":
        entry.mkdir()
    elif how == "writable by others":
        entry.write_text(f"{signature} {wrong}\n")
        entry.chmod(0o666)
    elif how == "in a folder others can read":
        entry.write_text(f"{signature} {wrong}\n")
        entry.chmod(0o600)
        entry.parent.chmod(0o755)
    else:
        raise AssertionError(how)
    return wrong


HOSTILE = ["wrong length", "not hex", "upper-case hex", "three words", "not ASCII", "huge", "a symbolic link",
           "a directory", "writable by others", "in a folder others can read"]


@pytest.mark.parametrize("how", HOSTILE)
def test_a_damaged_or_hostile_entry_falls_back_to_the_contents(code, tmp_path, monkeypatch, how):
    plant(code, tmp_path, how)
    assert freshness.code_digest(code) == reference_digest(code)
    assert freshness.render_key(b"spec", code) == freshness.render_key(b"spec", code)


def test_the_planted_entry_is_used_when_it_is_well_formed(code, tmp_path):
    """The control for the test above: the same entry, well-formed and the user's own, is
    believed (so each refusal above is the check's doing, not a miss for another reason)."""
    wrong = plant(code, tmp_path, "wrong length")
    signature = freshness._signature(freshness._listing(code))
    (entry,) = entries(tmp_path)
    entry.write_text(f"{signature} {wrong}\n")
    assert freshness.code_digest(code) == wrong


def test_no_cache_means_the_cache_is_neither_read_nor_written(code, tmp_path, monkeypatch):
    monkeypatch.setenv("STACKGEN_NO_CACHE", "1")
    assert freshness.code_digest(code) == reference_digest(code)
    assert not (tmp_path / "xdg" / "stackgen").exists()
    monkeypatch.delenv("STACKGEN_NO_CACHE")
    wrong = plant(code, tmp_path, "wrong length")
    (entry,) = entries(tmp_path)
    entry.write_text(f"{freshness._signature(freshness._listing(code))} {wrong}\n")
    monkeypatch.setenv("STACKGEN_NO_CACHE", "1")
    assert freshness.code_digest(code) == reference_digest(code)
