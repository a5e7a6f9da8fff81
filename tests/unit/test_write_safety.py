"""The writer never loses a user's work and never writes outside the output directory:
stale temp files, interrupted renders, --only, symlinks, directories and FIFOs in the way,
read-only trees, repeated --force, file modes, a damaged or hostile state file, a second
render running at the same time, and files that change while a render runs."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import EXAMPLES, require_tool
from stackgen import write
from stackgen.cli import cli
from stackgen.errors import StackError
from stackgen.render import render_tree
from stackgen.spec import load_spec

SMALL = """\
version: 1
name: small
systems: [x86_64-linux]
env:
  MODE: one
targets: [devshell, mirrors]
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "stack.yaml").write_text(SMALL)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


def state(root: Path) -> dict:
    return json.loads((root / ".stackgen/state.json").read_text())


def edit_spec(root: Path, old: str, new: str) -> None:
    spec = root / "stack.yaml"
    spec.write_text(spec.read_text().replace(old, new))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_state_records_hash_target_spec_and_version_per_file(project):
    assert run("render").exit_code == 0
    files = state(project)["files"]
    assert sorted(files) == ["env/mirrors.sh", "flake.nix", "nix/devshell.nix"]
    spec_hash = load_spec(project / "stack.yaml", "stack.yaml").source_sha256
    for rel, entry in files.items():
        assert entry["sha256"] == write.sha256((project / rel).read_bytes())
        assert entry["spec_sha256"] == spec_hash and entry["stackgen"]
    assert files["env/mirrors.sh"]["target"] == "mirrors" and files["flake.nix"]["target"] == "flake"


def test_only_records_the_spec_per_target(project):
    assert run("render").exit_code == 0
    first = state(project)["files"]
    edit_spec(project, "name: small", "name: small\nmirrors:\n  pypi: https://pypi.example.org/simple")
    assert run("render", "--only", "mirrors").exit_code == 0
    second = state(project)["files"]
    assert second["env/mirrors.sh"]["spec_sha256"] != first["env/mirrors.sh"]["spec_sha256"]
    # the Nix files were not rendered from the new spec, and the state says so
    assert second["nix/devshell.nix"] == first["nix/devshell.nix"]
    assert second["flake.nix"] == first["flake.nix"]
    result = run("render", "--check")
    assert result.exit_code == 1 and "update   nix/devshell.nix" in result.output


def test_stale_temp_files_are_swept_and_others_left_alone(project):
    """A render stages its files in .stackgen/staging/ (stackgen's alone): what a killed render
    left there is swept by the next one; a file beside the outputs, whatever its name, is the user's."""
    assert run("render").exit_code == 0
    assert not (project / ".stackgen/staging").exists(), "a finished render leaves no staging folder"
    (project / ".stackgen/staging").mkdir()
    stale = [project / ".stackgen/staging/devshell.nix.0a1b2c3d.tmp", project / ".stackgen/staging/state.json.ffffffff.tmp"]
    mine = [project / "nix/.notes.k3j_9x0a.tmp", project / "nix/.devshell.nix.k3j_9x0a.tmp", project / ".flake.nix.orig.zzzzzzzz.tmp"]
    for path in stale + mine:
        path.write_text("half a file")
    assert run("render", "--check").exit_code == 0, "temp files are not outputs: --check ignores them"
    edit_spec(project, "MODE: one", "MODE: two")
    result = run("render")
    assert result.exit_code == 0, result.output
    for path in stale:
        assert not path.exists()
        assert f"removed {path.relative_to(project)} (left by an interrupted render)" in result.output
    assert not (project / ".stackgen/staging").exists()
    assert all(path.read_text() == "half a file" for path in mine)


def test_stale_temp_files_alone_are_swept_by_an_unchanged_render(project):
    assert run("render").exit_code == 0
    (project / ".stackgen/staging").mkdir()
    (project / ".stackgen/staging/flake.nix.01234567.tmp").write_text("half")
    result = run("render")
    assert result.exit_code == 0, result.output
    assert "removed .stackgen/staging/flake.nix.01234567.tmp (left by an interrupted render)" in result.output
    assert sorted(p.name for p in (project / ".stackgen").iterdir()) == ["state.json"]


def test_interrupted_render_is_taken_over_by_a_render_of_another_spec(project):
    """The journal: state is rewritten before the files, so files a killed render left
    behind are known to be stackgen's even when the next render is of the old spec."""
    assert run("render").exit_code == 0
    old = tree(project)
    edit_spec(project, "MODE: one", "MODE: two")
    loaded = load_spec(project / "stack.yaml", "stack.yaml")
    p = write.plan(project, render_tree(loaded), loaded.source_sha256)
    journal = json.loads(write._state_bytes(p, journal=True))
    assert journal["incomplete"] is True
    (project / ".stackgen/state.json").write_text(json.dumps(journal))
    new_devshell = next(c for c in p.changes if c.path == "nix/devshell.nix").new
    (project / "nix/devshell.nix").write_text(new_devshell)  # killed after this one file

    edit_spec(project, "MODE: two", "MODE: one")  # the user goes back to the old spec
    result = run("render")
    assert result.exit_code == 0, result.output
    assert "update   nix/devshell.nix" in result.output
    now = tree(project)
    assert {k: v for k, v in now.items() if not k.startswith(".stackgen")} == {k: v for k, v in old.items() if not k.startswith(".stackgen")}
    assert "incomplete" not in state(project)
    assert all("previous" not in e for e in state(project)["files"].values())


def test_force_twice_keeps_both_hand_edits(project):
    assert run("render").exit_code == 0
    target = project / "nix/devshell.nix"
    for mode, edit in (("two", "# first edit\n"), ("three", "# second edit\n")):
        target.write_text(target.read_text() + edit)
        (project / "stack.yaml").write_text(SMALL.replace("MODE: one", f"MODE: {mode}"))
        result = run("render", "--force")
        assert result.exit_code == 0, result.output
    assert (project / "nix/devshell.nix.orig").read_text().endswith("# first edit\n")
    assert (project / "nix/devshell.nix.orig.1").read_text().endswith("# second edit\n")
    assert "kept your version as nix/devshell.nix.orig.1" in result.output


def test_a_users_file_mode_survives_an_update(project):
    assert run("render").exit_code == 0
    target = project / "env/mirrors.sh"
    target.chmod(0o755)
    edit_spec(project, "name: small", "name: small\nmirrors:\n  pypi: https://pypi.example.org/simple")
    assert run("render").exit_code == 0
    assert "pypi.example.org" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
@pytest.mark.parametrize("user_mode", [0o600, 0o640, 0o775])
def test_modes_follow_the_umask_and_the_users_chmod(project, umask, user_mode):
    """New files get 0o666 minus the umask; a file the user chmodded keeps its mode (also bits
    the umask would take away: the writer sets them after creating the staged file)."""
    old = os.umask(umask)
    try:
        assert run("render").exit_code == 0
        files = [p for p in project.rglob("*") if p.is_file() and ".stackgen" not in p.parts and p.name != "stack.yaml"]
        assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~umask}
        target = project / "env/mirrors.sh"
        target.chmod(user_mode)
        edit_spec(project, "name: small", "name: small\nmirrors:\n  pypi: https://pypi.example.org/simple")
        assert run("render").exit_code == 0
        assert "pypi.example.org" in target.read_text()
        assert stat.S_IMODE(target.stat().st_mode) == user_mode
        state = project / ".stackgen/state.json"
        assert stat.S_IMODE(state.stat().st_mode) == 0o666 & ~umask
    finally:
        os.umask(old)


@pytest.mark.parametrize("link", ["nix", ".stackgen", "flake.nix"])
def test_symlinks_in_the_output_tree_are_refused(project, tmp_path_factory, link):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "flake.nix").write_text("precious\n")
    (project / link).symlink_to(outside / "flake.nix" if link == "flake.nix" else outside)
    result = run("render")
    assert result.exit_code == 1
    assert "is a symbolic link" in result.stderr
    assert tree(outside) == {"flake.nix": b"precious\n"}
    assert not (project / "env").exists(), "a refused render writes nothing"


def test_a_directory_where_a_file_goes_is_an_error(project):
    (project / "flake.nix").mkdir()
    result = run("render")
    assert result.exit_code == 1
    assert result.stderr == "error: flake.nix is a directory where stackgen renders a file\n  hint: move it away\n"
    assert not (project / "nix").exists()


def test_a_fifo_where_a_file_goes_is_an_error_not_a_hang(project):
    os.mkfifo(project / "flake.nix")
    result = run("render")
    assert result.exit_code == 1
    assert "flake.nix is not a regular file" in result.stderr


def test_an_output_path_that_is_a_file_is_an_error(project):
    (project / "out").write_text("")
    result = run("render", "-o", "out")
    assert result.exit_code == 2  # click's own check of -o: a usage error
    assert "Directory 'out' is a file." in result.stderr
    with pytest.raises(StackError, match="exists and is not a directory"):
        write.plan(project / "out", [], "")


@pytest.mark.parametrize(
    "files",
    [
        {"../outside": {"sha256": "0" * 64}},
        {"/etc/passwd": {"sha256": "0" * 64}},
        {".stackgen/state.json": {"sha256": "0" * 64}},
        {"flake.nix": {"sha256": "not a hash"}},
        {"flake.nix": {"sha256": "0" * 64, "previous": "x"}},
    ],
)
def test_a_hostile_or_damaged_state_file_is_refused(project, files):
    (project / ".stackgen").mkdir()
    (project / ".stackgen/state.json").write_text(json.dumps({"format": 1, "files": files}))
    result = run("render")
    assert result.exit_code == 1
    assert "state.json is damaged" in result.stderr and "hint: delete it" in result.stderr
    assert sorted(p.name for p in project.iterdir()) == [".stackgen", "stack.yaml"]


def test_a_second_render_at_the_same_time_is_refused(project):
    assert run("render").exit_code == 0
    edit_spec(project, "MODE: one", "MODE: two")
    fd = os.open(project / ".stackgen", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = run("render")
    finally:
        os.close(fd)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: another stackgen render is writing .")
    assert 'MODE = "one"' in (project / "nix/devshell.nix").read_text()
    assert run("render").exit_code == 0


def test_a_file_edited_during_the_render_is_not_overwritten(project):
    assert run("render").exit_code == 0
    edit_spec(project, "MODE: one", "MODE: two")
    loaded = load_spec(project / "stack.yaml", "stack.yaml")
    p = write.plan(project, render_tree(loaded), loaded.source_sha256)
    (project / "nix/devshell.nix").write_text("# the user saved this just now\n")
    with pytest.raises(StackError, match="nix/devshell.nix changed while stackgen was rendering"):
        write.apply(p)
    assert (project / "nix/devshell.nix").read_text() == "# the user saved this just now\n"


def run_without_write_rights(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI in a process that file permissions apply to: as root, one without the
    capabilities that let root write anywhere (setpriv drops them from the bounding set)."""
    cmd = [sys.executable, "-m", "stackgen", *args]
    if os.geteuid() == 0:
        setpriv = require_tool("setpriv", "runs stackgen as a root without CAP_DAC_OVERRIDE")
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def readonly(tmp_path):
    (tmp_path / "stack.yaml").write_text(SMALL)
    out = tmp_path / "out"
    out.mkdir()
    yield tmp_path, out
    for path in [out, *out.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


def make_read_only(out: Path) -> None:
    for path in [out, *out.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def test_read_only_output_directory_is_a_clean_error(readonly):
    root, out = readonly
    make_read_only(out)
    proc = run_without_write_rights(["render", "-o", "out"], root)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cannot write .stackgen in out: Permission denied\n"), proc.stderr
    assert list(out.iterdir()) == []


def test_an_up_to_date_read_only_tree_renders_and_checks(readonly):
    root, out = readonly
    proc = subprocess.run([sys.executable, "-m", "stackgen", "render", "-o", "out"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    make_read_only(out)
    for args in (["render", "-o", "out"], ["render", "--check", "-o", "out"]):
        proc = run_without_write_rights(args, root)
        assert proc.returncode == 0, proc.stderr
    (root / "stack.yaml").write_text(SMALL.replace("MODE: one", "MODE: two"))
    proc = run_without_write_rights(["render", "-o", "out"], root)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    # the first file staged beside its target fails; nothing, the state included, has changed
    assert proc.stderr.startswith("error: cannot write nix/devshell.nix in out: Permission denied\n"), proc.stderr
    assert 'MODE = "one"' in (out / "nix/devshell.nix").read_text()


def test_examples_render_clean_twice(tmp_path):
    shutil.copy(EXAMPLES / "ai-stack.yaml", tmp_path / "stack.yaml")
    for _ in range(2):
        result = CliRunner().invoke(cli, ["render", str(tmp_path / "stack.yaml")], catch_exceptions=False)
        assert result.exit_code == 0
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.orig"))


@pytest.mark.parametrize("failing", ["the third file", "the journal"])
def test_a_full_disk_part_way_through_changes_no_file(project, monkeypatch, failing):
    """Every file is staged before any is renamed into place: an error while writing one of
    them, or the journal, leaves the whole tree as it was, with no temp file behind."""
    spec = project / "stack.yaml"
    spec.write_text(SMALL.replace("targets: [devshell, mirrors]", "gpu: {vendor: nvidia}\nmirrors: {region: china}\ntargets: [devshell, mirrors]"))
    assert run("render").exit_code == 0
    spec.write_text(SMALL.replace("MODE: one", "MODE: two").replace("targets: [devshell, mirrors]", "nixpkgs: nixos-unstable\ngpu: {vendor: nvidia, cuda: '13'}\nmirrors: {region: china, huggingface: 'https://hf.example.org'}\ntargets: [devshell, mirrors]"))
    before = tree(project)

    real_stage, outputs = write._stage, []

    def stage(staging, name, data, mode, **kw):
        is_state = name == "state.json"
        if not is_state:
            outputs.append(name)
        if (failing == "the journal" and is_state) or (failing == "the third file" and len(outputs) == 3):
            raise OSError(28, "No space left on device")
        return real_stage(staging, name, data, mode, **kw)

    monkeypatch.setattr(write, "_stage", stage)
    result = run("render")
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert len(outputs) >= 3, "the change must reach at least three files"
    assert tree(project) == before


def test_every_staged_file_is_fsynced_before_the_journal_and_after_all_are_written(project, monkeypatch):
    """Crash safety with the one-pass fsync (issue 11, speed): each staged file's data is
    fsynced before the journal names it and before any file is renamed into place; and the
    files are all written before the first is synced (syncing each right after writing it
    cost 0.9 s of fsync for 2,000 files, against 0.15 s in one pass after)."""
    assert run("render").exit_code == 0
    two_file_change(project)
    events: list[tuple[str, object]] = []
    real = {name: getattr(os, name) for name in ("open", "fsync", "replace", "link")}

    def open_(path, flags, *args, **kw):
        fd = real["open"](path, flags, *args, **kw)
        if flags & os.O_CREAT and str(path).endswith(".tmp"):
            events.append(("create", (str(path).startswith("state.json"), os.fstat(fd).st_ino)))
        return fd

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real["fsync"](fd)

    def install(kind):
        def call(src, dst, *args, src_dir_fd=None, **kw):
            events.append((kind, os.stat(src, dir_fd=src_dir_fd, follow_symlinks=False).st_ino))
            return real[kind](src, dst, *args, src_dir_fd=src_dir_fd, **kw)

        return call

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", install("replace"))
    monkeypatch.setattr(os, "link", install("link"))
    result = run("render")
    monkeypatch.undo()
    assert result.exit_code == 0, result.output

    def at(kind, ino):
        return [i for i, (k, v) in enumerate(events) if k == kind and v == ino]

    outputs = [ino for k, (is_state, ino) in ((k, v) for k, v in events if k == "create") if not is_state]
    journals = [ino for k, (is_state, ino) in ((k, v) for k, v in events if k == "create") if is_state]
    assert len(outputs) >= 3 and len(journals) == 2, events  # the change writes at least three files
    first_install = min(i for i, (k, _) in enumerate(events) if k in ("replace", "link"))
    first_sync = min(i for i, (k, _) in enumerate(events) if k == "fsync")
    assert all(at("create", (False, ino))[0] < first_sync for ino in outputs), "all written before any is synced"
    journal_install = at("replace", journals[0])[0]
    for ino in outputs:
        synced = at("fsync", ino)
        assert synced and synced[0] < min(journal_install, first_install), f"staged file {ino} not durable before the renames"
    for ino in journals:  # each state file is durable before it replaces the last
        assert at("fsync", ino) and at("fsync", ino)[0] < at("replace", ino)[0]


# --- paths from the state file: one gate, no symlink out (issue 10, item 5) ----------------------


def write_state(root: Path, files: dict) -> None:
    (root / ".stackgen").mkdir(exist_ok=True)
    (root / ".stackgen/state.json").write_text(json.dumps({"format": 1, "stackgen": "0.1.0", "files": files}))


def entry(target: str, data: bytes = b"") -> dict:
    return {"sha256": write.sha256(data), "target": target, "spec_sha256": "0" * 64, "stackgen": "0.1.0"}


@pytest.mark.parametrize("target", ["compose", "mirrors"])
def test_a_state_entry_through_a_symlink_never_touches_the_outside(project, tmp_path_factory, target):
    """`link/notes` in the state, with `link` a symlink out of the tree: --only mirrors must not
    remove, sweep or read anything there, whether the entry belongs to it or to another target."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "notes").write_text("precious\n")
    (outside / ".notes.abcd1234.tmp").write_text("precious too\n")  # what the old sweep took for its temp file
    assert run("render").exit_code == 0
    (project / "env" / "link").symlink_to(outside)  # inside a folder stackgen renders into
    recorded = state(project)["files"]
    write_state(project, {**recorded, "env/link/notes": entry(target, b"precious\n")})
    result = run("render", "--only", "mirrors")
    if target == "mirrors":
        assert result.exit_code == 1 and "env/link is a symbolic link" in result.stderr, result.output
    else:
        assert result.exit_code == 0, result.output
    assert tree(outside) == {"notes": b"precious\n", ".notes.abcd1234.tmp": b"precious too\n"}


def test_a_symlink_swapped_in_while_the_render_writes_leads_nowhere(project, tmp_path_factory, monkeypatch):
    """The folders are held open from the start: replacing `nix` by a link to the outside
    while the files are being staged sends nothing there."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "devshell.nix").write_text("precious\n")
    assert run("render").exit_code == 0
    edit_spec(project, "MODE: one", "MODE: two")
    real_fsync, swapped = os.fsync, []

    def fsync(fd):
        if not swapped:
            swapped.append(True)
            (project / "nix").rename(project / "nix.moved")
            (project / "nix").symlink_to(outside)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = run("render")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert swapped and "Traceback" not in result.output
    assert tree(outside) == {"devshell.nix": b"precious\n"}
    assert 'MODE = "two"' in (project / "nix.moved/devshell.nix").read_text(), "the write went to the folder it opened"


# --- a hand edit saved while the render writes (item 6) -----------------------------------------


def two_file_change(root: Path) -> None:
    """A spec change that updates nix/devshell.nix and env/mirrors.sh and creates GPU files."""
    edit_spec(root, "MODE: one", "MODE: two\nmirrors:\n  pypi: https://pypi.example.org/simple\ngpu:\n  vendor: nvidia")


def test_an_edit_saved_while_files_are_staged_is_kept_and_nothing_is_written(project, monkeypatch):
    assert run("render").exit_code == 0
    two_file_change(project)
    before = tree(project)
    real_stage = write._stage

    def stage(staging, name, data, mode, **kw):
        if name == "mirrors.sh":  # the render has classified (under the lock) and is staging
            (project / "env/mirrors.sh").write_text("# the user saved this just now\n")
        return real_stage(staging, name, data, mode, **kw)

    monkeypatch.setattr(write, "_stage", stage)
    result = run("render")
    assert result.exit_code == 1
    assert "env/mirrors.sh changed while stackgen was rendering; not overwriting it" in result.stderr
    assert "nothing was written" in result.stderr
    expected = {**before, "env/mirrors.sh": b"# the user saved this just now\n"}
    assert tree(project) == expected, "the state is put back, no other file changed, no temp file left"
    assert not (project / ".stackgen/staging").exists()


def test_an_edit_saved_between_the_check_and_the_renames_is_kept(project, monkeypatch):
    """The last look is right before each rename: an edit saved after the check of every file
    (here: while the first file is renamed) is still not overwritten."""
    assert run("render").exit_code == 0
    two_file_change(project)
    real_replace, edited = os.replace, []

    def replace(src, dst, *args, **kwargs):
        result = real_replace(src, dst, *args, **kwargs)
        if dst != "state.json" and not edited:
            edited.append(dst)
            (project / "nix/devshell.nix").write_text("# the user saved this just now\n")
            (project / "nix/nixpkgs-config.nix").write_text("# and created this\n")
        return result

    monkeypatch.setattr(os, "replace", replace)
    result = run("render")
    monkeypatch.setattr(os, "replace", real_replace)
    assert edited == ["mirrors.sh"], edited
    assert result.exit_code == 1
    assert "nix/devshell.nix changed while stackgen was rendering; not overwriting it" in result.stderr
    assert (project / "nix/devshell.nix").read_text() == "# the user saved this just now\n"
    assert (project / "nix/nixpkgs-config.nix").read_text() == "# and created this\n"
    assert not (project / ".stackgen/staging").exists()
    # the journal knows what was written: the next render finishes and names only the edits
    result = run("render")
    assert result.exit_code == 1
    conflicts = sorted(line.split()[1].rstrip(":") for line in result.stderr.splitlines() if "not overwriting it" in line)
    assert conflicts == ["nix/devshell.nix", "nix/nixpkgs-config.nix"], result.stderr
    assert run("render", "--force").exit_code == 0
    assert (project / "nix/devshell.nix.orig").read_text() == "# the user saved this just now\n"
    assert run("render", "--check").exit_code == 0


def test_a_file_created_at_a_new_path_during_the_renames_is_kept(project, monkeypatch):
    """A new file is linked into place, which never replaces one that appeared meanwhile."""
    assert run("render").exit_code == 0
    two_file_change(project)
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):  # after nix/driver-libs.sh is linked, its temp is unlinked
        if str(path).startswith("driver-libs.sh.") and not (project / "nix/nixpkgs-config.nix").exists():
            (project / "nix/nixpkgs-config.nix").write_text("# mine\n")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    result = run("render")
    monkeypatch.setattr(os, "unlink", real_unlink)
    assert result.exit_code == 1, result.output
    assert "nix/nixpkgs-config.nix changed while stackgen was rendering" in result.stderr
    assert (project / "nix/nixpkgs-config.nix").read_text() == "# mine\n"


# --- two renders at once: state is read under the lock (item 7) ---------------------------------


def test_two_only_renders_at_once_lose_no_state_entry(project, monkeypatch):
    """`render --only mirrors` plans; before it takes the lock, a `render --only devshell`
    runs to its end. The first must classify again under the lock, from the state the second
    wrote, or it writes back the old devshell entry and the next render sees a false conflict."""
    assert run("render").exit_code == 0
    edit_spec(project, "MODE: one", "MODE: two\nmirrors:\n  pypi: https://pypi.example.org/simple")
    real_locked, ran = write._locked, []

    @contextmanager
    def locked(tree):
        if not ran:
            ran.append(True)
            loaded = load_spec(project / "stack.yaml", "stack.yaml")
            other = write.plan(project, render_tree(loaded, "devshell"), loaded.source_sha256, {"devshell", "flake"})
            write.apply(other)
        with real_locked(tree):
            yield

    monkeypatch.setattr(write, "_locked", locked)
    result = run("render", "--only", "mirrors")
    assert ran and result.exit_code == 0, result.output
    monkeypatch.setattr(write, "_locked", real_locked)
    files = state(project)["files"]
    for rel in ("nix/devshell.nix", "env/mirrors.sh"):
        assert files[rel]["sha256"] == write.sha256((project / rel).read_bytes()), f"the state entry of {rel} was lost"
    assert 'MODE = "two"' in (project / "nix/devshell.nix").read_text()
    check = run("render", "--check")
    assert check.exit_code == 0, check.output


# --- FIFOs never hang a render (item 9) -----------------------------------------------------------


def cli_run(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The CLI in its own process with a deadline, so that a hang fails the test instead of the suite."""
    env = {k: v for k, v in os.environ.items() if k != "STACKGEN_NO_CACHE"}
    return subprocess.run([sys.executable, "-m", "stackgen", *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("where", ["nix/devshell.nix", ".stackgen/state.json"])
@pytest.mark.parametrize("args", [["render"], ["render", "--check"], ["render", "--diff"]])
def test_a_fifo_in_an_up_to_date_tree_is_an_error_not_a_hang(project, where, args):
    assert cli_run(["render"], project).returncode == 0
    (project / where).unlink()
    os.mkfifo(project / where)
    proc = cli_run(args, project)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    if where == ".stackgen/state.json":
        assert "state.json is damaged (it is a FIFO, not a regular file)" in proc.stderr
    else:
        assert "nix/devshell.nix is not a regular file (a FIFO)" in proc.stderr
    assert stat.S_ISFIFO(os.lstat(project / where).st_mode)


# --- the state file is validated in one place, and bounded (item 14) -----------------------------


@pytest.mark.parametrize(
    "damage",
    [
        {"target": ["list"]},
        {"target": None},
        {"target": "../x"},
        {"sha256": 7},
        {"spec_sha256": "x"},
        {"stackgen": 1},
        {"previous": {"a": 1}},
        {"previous": ["0" * 63]},
        {"extra": 1},
    ],
    ids=repr,
)
@pytest.mark.parametrize("args", [["render"], ["render", "--only", "mirrors"], ["render", "--only", "devshell"], ["render", "--check"]])
def test_a_damaged_state_entry_is_a_message_not_a_traceback(project, damage, args):
    assert run("render").exit_code == 0
    data = state(project)
    data["files"]["env/mirrors.sh"].update(damage)
    data.pop("render_key")
    (project / ".stackgen/state.json").write_text(json.dumps(data))
    before = tree(project)
    result = run(*args)
    assert result.exit_code == 1
    assert "state.json is damaged (the entry for env/mirrors.sh" in result.stderr and "hint: delete it" in result.stderr, result.stderr
    assert tree(project) == before


WARNING = {"message": "m", "line": 1, "col": 1, "source_line": "x", "hint": None}


@pytest.mark.parametrize(
    "top",
    [
        {"format": "1"}, {"format": True}, {"format": 2}, {"stackgen": ["x"]}, {"incomplete": "yes"}, {"render_key": 5}, {"files": []}, {"extra": 1},
        # the recorded warnings (printed again by the up-to-date shortcut)
        {"warnings": {}}, {"warnings": ["text"]}, {"warnings": [{"message": "m"}]},
        {"warnings": [{**WARNING, "message": None}]}, {"warnings": [{**WARNING, "line": "1"}]}, {"warnings": [{**WARNING, "col": 0}]},
        {"warnings": [{**WARNING, "line": True}]}, {"warnings": [{**WARNING, "hint": 3}]}, {"warnings": [{**WARNING, "extra": 1}]},
        {"warnings": [{**WARNING, "source_line": "x" * 4097}]}, {"warnings": [WARNING] * 65},
    ],  # fmt: skip
    ids=repr,
)
def test_a_damaged_state_file_is_a_message_not_a_traceback(project, top):
    """The shortcut finds the state unusable and leaves it to the full path, which says why."""
    assert run("render").exit_code == 0
    data = {**state(project), **top}
    (project / ".stackgen/state.json").write_text(json.dumps(data))
    for args in (["render"], ["render", "--only", "mirrors"]):
        result = run(*args)
        assert result.exit_code == 1 and "state.json is damaged" in result.stderr, result.output


def test_a_huge_state_file_is_refused_without_reading_it(project):
    """A sparse 64 GiB state file: read whole, it exhausts memory; it must be refused at once."""
    assert cli_run(["render"], project).returncode == 0
    with open(project / ".stackgen/state.json", "r+b") as fh:
        fh.truncate(64 << 30)
    for args in (["render"], ["render", "--check"], ["render", "--only", "mirrors"]):
        proc = cli_run(args, project)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert f"state.json is damaged (it is larger than {write.MAX_STATE_BYTES >> 20} MiB)" in proc.stderr


def test_a_state_file_just_over_the_bound_is_refused(project):
    assert run("render").exit_code == 0
    data = state(project)
    text = json.dumps(data)
    (project / ".stackgen/state.json").write_text(text + " " * (write.MAX_STATE_BYTES + 1 - len(text)))
    result = run("render")
    assert result.exit_code == 1 and "is larger than" in result.stderr
    (project / ".stackgen/state.json").write_text(text + " " * (write.MAX_STATE_BYTES - len(text)))
    assert run("render").exit_code == 0, "a state file at the bound is read"


# --- a spec from a pipe is read once (item 15) ----------------------------------------------------


def test_a_spec_from_a_pipe_is_read_once(tmp_path):
    out = tmp_path / "out"
    first = cli_run(["render", "/dev/stdin", "-o", str(out)], tmp_path, stdin=SMALL)
    assert first.returncode == 0, first.stderr
    assert sorted(state(out)["files"]) == ["env/mirrors.sh", "flake.nix", "nix/devshell.nix"]
    for args in (["render", "--check"], ["render"], ["render", "--only", "mirrors"], ["render", "--diff"]):
        proc = cli_run([*args, "/dev/stdin", "-o", str(out)], tmp_path, stdin=SMALL)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "empty" not in proc.stderr
    changed = cli_run(["render", "--check", "/dev/stdin", "-o", str(out)], tmp_path, stdin=SMALL.replace("one", "two"))
    assert changed.returncode == 1 and "update   nix/devshell.nix" in changed.stdout, changed.stdout + changed.stderr


def test_a_spec_from_a_pipe_needs_an_output_directory(tmp_path):
    for args in (["render"], ["render", "--check"]):
        proc = cli_run([*args, "/dev/stdin"], tmp_path, stdin=SMALL)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "/dev/stdin is not a regular file (a pipe or a device)" in proc.stderr and "-o DIR" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_spec_named_through_dev_needs_an_output_directory(tmp_path):
    """`render --check /dev/stdin < stack.yaml`: stdin is a regular file, but /dev is no project directory."""
    spec = tmp_path / "stack.yaml"
    spec.write_text(SMALL)
    with open(spec) as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "stackgen", "render", "--check", "/dev/stdin"], stdin=stdin, capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "named through /dev" in proc.stderr and "-o DIR" in proc.stderr
