"""The write stage: classify every rendered file against the disk, then write, or refuse.

Each output is one of
  create     - not on disk yet
  unchanged  - on disk with exactly the rendered bytes (not rewritten: its mtime stays)
  update     - on disk as stackgen last wrote it; the render changed it
  conflict   - on disk, but edited by hand since stackgen wrote it, or never written by stackgen
  remove     - written by an earlier render, no longer rendered, and not edited since
  orphan     - like remove, but edited by hand: left in place and forgotten

The state file (`.stackgen/state.json`) records, for every file stackgen wrote, its hash, its
target, and the spec hash and stackgen version that produced it.

A render that writes goes in three steps, under an exclusive lock on `.stackgen/`:
  1. the state file is rewritten as a journal: each file about to be written is recorded with
     its new hash, and the hashes stackgen wrote before it kept under "previous";
  2. each file is written atomically (temp file in the same directory, fsync, rename);
  3. the state file is written again, without the journal.
A render killed at any point thus leaves every file old or new, and both versions are known
to be stackgen's, so the next render, of this spec or of another, takes over without a false
conflict. Temp files left by a killed render are swept by the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from . import __version__
from .errors import Problem, StackError

if TYPE_CHECKING:  # the plan needs only .path/.text/.target; reading state needs no Jinja2
    from .render import Rendered

STATE_DIR = ".stackgen"
STATE_PATH = ".stackgen/state.json"
STATE_FORMAT = 1
WRITES = ("create", "update")
# What tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") creates: 8 random [a-z0-9_].
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Change:
    path: str
    action: str
    target: str
    new: str | None = None  # rendered text (None for remove/orphan)
    old: bytes | None = None  # bytes on disk, when there are any
    reason: str = ""


@dataclass
class Plan:
    out_dir: Path
    changes: list[Change]
    state: dict
    spec_sha256: str
    owners: set[str] | None  # the targets this render covers (None: all)
    render_key: str | None = None  # freshness.render_key of a full render; recorded by apply
    swept: list[str] = field(default_factory=list)  # stale temp files removed by apply()

    def by(self, *actions: str) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    @property
    def dirty(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)


def load_state(out_dir: Path) -> dict:
    path = out_dir / STATE_PATH
    problems: list[Problem] = []
    if _confined(_real_dir(out_dir), out_dir, STATE_PATH, problems) is None:
        raise StackError(problems)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {"format": STATE_FORMAT, "files": {}}
    except OSError as exc:
        raise StackError(Problem(f"cannot read {path}: {exc.strerror or exc}")) from None
    try:
        state = json.loads(raw)
        if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
            raise ValueError("not a stackgen state file")
        for rel, entry in state["files"].items():
            if not _clean_rel(rel) or rel.split("/")[0] == STATE_DIR:
                raise ValueError(f"it lists the path {rel!r}, which stackgen never writes")
            if not isinstance(entry, dict) or not _is_hash(entry.get("sha256")):
                raise ValueError(f"malformed entry for {rel}")
            previous = entry.get("previous", [])
            if not isinstance(previous, list) or not all(_is_hash(h) for h in previous):
                raise ValueError(f"malformed entry for {rel}")
    except (ValueError, RecursionError) as exc:
        raise StackError(
            Problem(
                f"{path} is damaged ({exc}); stackgen cannot tell which files it owns",
                hint="delete it and run 'stackgen render --force' (hand-edited files are kept as .orig)",
            )
        ) from None
    return state


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _owned(entry: dict | None, data: bytes) -> bool:
    """Whether `data` is something stackgen wrote at this path (as recorded in `entry`)."""
    if entry is None:
        return False
    digest = sha256(data)
    return digest == entry["sha256"] or digest in entry.get("previous", ())


def plan(
    out_dir: Path, files: list[Rendered], spec_sha256: str, owners: set[str] | None = None, render_key: str | None = None
) -> Plan:
    """Classify each rendered file against what is on disk. Reads only; writes nothing."""
    state = load_state(out_dir)
    recorded: dict = state["files"]
    root = _real_dir(out_dir)
    changes: list[Change] = []
    problems: list[Problem] = []
    rendered = {f.path for f in files}
    for f in files:
        target = _confined(root, out_dir, f.path, problems)
        if target is None:
            continue
        old = _read(target, f.path, problems)
        if old is _UNREADABLE:
            continue
        new_bytes = f.text.encode()
        if old is None:
            changes.append(Change(f.path, "create", f.target, f.text))
        elif old == new_bytes:
            changes.append(Change(f.path, "unchanged", f.target, f.text, old))
        elif _owned(recorded.get(f.path), old):
            changes.append(Change(f.path, "update", f.target, f.text, old))
        else:
            why = "edited since stackgen wrote it" if f.path in recorded else "exists, and stackgen did not write it"
            changes.append(Change(f.path, "conflict", f.target, f.text, old, why))
    for path, entry in sorted(recorded.items()):
        if path in rendered or (owners is not None and entry.get("target") not in owners):
            continue
        target = _confined(root, out_dir, path, problems)
        if target is None:
            continue
        old = _read(target, path, problems)
        if old is _UNREADABLE:
            continue
        if old is None:
            changes.append(Change(path, "remove", entry.get("target", ""), reason="already gone"))
        elif _owned(entry, old):
            changes.append(Change(path, "remove", entry.get("target", ""), old=old))
        else:
            changes.append(Change(path, "orphan", entry.get("target", ""), old=old, reason="no longer rendered, edited by hand: left in place"))
    changes.sort(key=lambda c: c.path)
    if problems:
        raise StackError(problems)
    return Plan(out_dir, changes, state, spec_sha256, owners, render_key if owners is None else None)


def apply(p: Plan, *, force: bool = False) -> list[str]:
    """Write the plan. Refuses (StackError) on conflicts unless `force`; returns .orig backups made.

    Every file is staged (written and fsynced beside its target) before any is renamed into
    place, so an OSError while writing (a full disk, a read-only directory) changes nothing;
    it becomes a StackError naming the file.
    """
    conflicts = p.by("conflict")
    if conflicts and not force:
        raise StackError(
            [Problem(f"{c.path}: {c.reason}; not overwriting it") for c in conflicts]
            + [Problem("nothing was written", hint="see the changes with --diff; --force overwrites and keeps each file as <file>.orig")]
        )
    writes = p.by(*WRITES, "conflict")
    removes = [c for c in p.by("remove") if c.old is not None]
    final = _state_bytes(p, journal=False)
    if not writes and not removes and _current_state(p.out_dir) == final and not _plan_temps(p):
        return []  # nothing to do: not even the lock, so a read-only tree that is up to date passes
    backups: list[str] = []
    doing = STATE_DIR
    try:
        with _locked(p.out_dir):
            _verify(p)
            p.swept = _sweep_temps(p)
            default_mode = _file_mode()
            touched_dirs: set[Path] = set()
            # 1. Every new file and backup goes to a temp file beside its target first, so a
            #    full disk or an I/O error is met before anything visible has changed.
            staged: list[tuple[str, str, Path]] = []  # (what, temp file, target)
            renamed = 0
            try:
                for c in writes:
                    target = p.out_dir / c.path
                    mode = _mode_of(target, default_mode)
                    if c.action == "conflict":
                        backup = _backup_path(target, c.old or b"")
                        doing = str(backup.relative_to(p.out_dir))
                        if not backup.exists():
                            staged.append((doing, _stage(backup, c.old or b"", mode), backup))
                        backups.append(doing)
                    doing = c.path
                    staged.append((c.path, _stage(target, c.new.encode(), mode), target))
                # 2. The journal: the state with both old and new hashes, so that any next
                #    render recognises either version of each file as stackgen's.
                if writes:
                    doing = STATE_PATH
                    _atomic_write(p.out_dir / STATE_PATH, _state_bytes(p, journal=True), default_mode)
                # 3. The renames, one after another.
                for what, tmp, target in staged:
                    doing = what
                    os.replace(tmp, target)
                    renamed += 1
                    touched_dirs.add(target.parent)
            except BaseException:
                for _, tmp, _ in staged[renamed:]:
                    _unlink_quietly(tmp)
                raise
            for c in removes:
                doing = c.path
                (p.out_dir / c.path).unlink(missing_ok=True)
                touched_dirs.add((p.out_dir / c.path).parent)
            doing = STATE_PATH
            for d in sorted(touched_dirs):  # the files' renames are durable before the state says so
                _fsync_dir(d)
            if _current_state(p.out_dir) != final:
                _atomic_write(p.out_dir / STATE_PATH, final, default_mode)
                _fsync_dir(p.out_dir / STATE_DIR)
    except OSError as exc:
        raise StackError(
            Problem(
                f"cannot write {doing} in {p.out_dir}: {exc.strerror or exc}",
                hint="every file is either as it was or fully rendered; fix the cause and run 'stackgen render' again",
            )
        ) from None
    return backups


def up_to_date(out_dir: Path, render_key: str) -> int | None:
    """The number of files, when `out_dir` holds exactly what the full render keyed `render_key`
    wrote (every recorded file present, a plain file, with its recorded hash); None otherwise."""
    try:
        state = json.loads((out_dir / STATE_PATH).read_bytes())
        if state.get("render_key") != render_key:
            return None
        recorded = state["files"].items()
        if _stale_temps(out_dir, state["files"]):
            return None  # a killed render left temp files: the full path sweeps them
        root = _real_dir(out_dir)
        for rel, entry in recorded:
            target = _confined(root, out_dir, rel, [])
            if target is None or sha256(target.read_bytes()) != entry["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StackError):
        return None  # anything unexpected: the full pipeline decides, and explains
    return len(recorded)


def diff(p: Plan) -> str:
    import difflib

    out = []
    for c in p.changes:
        if c.action == "unchanged":
            continue
        old = (c.old or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        new = (c.new or "").splitlines(keepends=True)
        a = "/dev/null" if c.old is None else f"a/{c.path}"
        b = "/dev/null" if c.new is None else f"b/{c.path}"
        out.extend(difflib.unified_diff(old, new, a, b))
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n\\ No newline at end of file\n"
    return "".join(out)


# ---------------------------------------------------------------------------------------------

_UNREADABLE = object()


def _real_dir(out_dir: Path) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise StackError(Problem(f"output directory {out_dir} exists and is not a directory"))
    return out_dir.resolve()


def _confined(root: Path, out_dir: Path, rel: str, problems: list[Problem]) -> Path | None:
    """out_dir/rel, provided it cannot land outside out_dir (no '..', no absolute, no symlinks)."""
    parts = rel.split("/")
    if not _clean_rel(rel):
        problems.append(Problem(f"refusing to write {rel!r}: the path leaves the output directory"))
        return None
    target = out_dir.joinpath(*parts)
    probe = out_dir
    for part in parts:
        probe = probe / part
        if probe.is_symlink():
            problems.append(
                Problem(f"refusing to write {rel}: {probe} is a symbolic link", hint="stackgen writes real files only; remove the link")
            )
            return None
    if not target.resolve().is_relative_to(root):
        problems.append(Problem(f"refusing to write {rel}: it resolves outside {out_dir}"))
        return None
    return target


def _read(target: Path, rel: str, problems: list[Problem]) -> bytes | None | object:
    try:
        mode = os.lstat(target).st_mode
        if stat.S_ISDIR(mode):
            problems.append(Problem(f"{rel} is a directory where stackgen renders a file", hint="move it away"))
            return _UNREADABLE
        if not stat.S_ISREG(mode):  # a FIFO would block the read forever; a device is no file of ours
            problems.append(Problem(f"{rel} is not a regular file (a FIFO, socket or device)", hint="move it away"))
            return _UNREADABLE
        return target.read_bytes()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        problems.append(Problem(f"{rel}: a parent of it is a file, not a directory", hint="move it away"))
    except OSError as exc:
        problems.append(Problem(f"cannot read {rel}: {exc.strerror or exc}"))
    return _UNREADABLE


def _state_bytes(p: Plan, *, journal: bool) -> bytes:
    """The state file after this render (`journal`: the one written before the files)."""
    files = {path: dict(entry) for path, entry in p.state.get("files", {}).items()}
    for c in p.changes:
        if c.action in WRITES + ("conflict", "unchanged"):
            entry = {
                "sha256": sha256(c.new.encode()),
                "target": c.target,
                "spec_sha256": p.spec_sha256,
                "stackgen": __version__,
            }
            before = files.get(c.path)
            if journal and c.action != "unchanged" and before is not None:
                hashes = [before["sha256"], *before.get("previous", [])]
                previous = sorted(set(hashes) - {entry["sha256"]})
                if previous:
                    entry["previous"] = previous
            files[c.path] = entry
        elif c.action in ("remove", "orphan") and not journal:
            files.pop(c.path, None)
    state = {"format": STATE_FORMAT, "stackgen": __version__, "files": dict(sorted(files.items()))}
    if journal:
        state["incomplete"] = True
    elif p.render_key:  # only a completed full render records it; any other write clears it
        state["render_key"] = p.render_key
    return (json.dumps(state, indent=2) + "\n").encode()


def _current_state(out_dir: Path) -> bytes | None:
    try:
        return (out_dir / STATE_PATH).read_bytes()
    except OSError:
        return None


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `.stackgen/` (the directory itself: no lock file to leave behind)."""
    state_dir = out_dir / STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no lock
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StackError(
                    Problem(f"another stackgen render is writing {out_dir}", hint="wait for it to finish, then run again")
                ) from None
        yield
    finally:
        os.close(fd)


def _verify(p: Plan) -> None:
    """Under the lock: every file is still as plan() saw it (nobody wrote in between)."""
    moved = []
    for c in p.changes:
        try:
            now = (p.out_dir / c.path).read_bytes()
        except FileNotFoundError:
            now = None
        if now != c.old:
            moved.append(Problem(f"{c.path} changed while stackgen was rendering"))
    if moved:
        raise StackError(moved + [Problem("nothing was written", hint="run 'stackgen render' again")])


def _stale_temps(out_dir: Path, paths) -> list[Path]:
    """The temp files a killed render left beside the files stackgen manages (`paths`)."""
    names: dict[Path, set[str]] = {out_dir / STATE_DIR: {"state.json"}}
    for rel in paths:
        target = out_dir / rel
        names.setdefault(target.parent, set()).add(target.name)
    stale = []
    for folder, managed in sorted(names.items()):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in sorted(entries):
            m = _TEMP_NAME.fullmatch(entry)
            if m and re.sub(r"\.orig(\.[0-9]+)?$", "", m["name"]) in managed and stat.S_ISREG(os.lstat(folder / entry).st_mode):
                stale.append(folder / entry)
    return stale


def _plan_temps(p: Plan) -> list[Path]:
    return _stale_temps(p.out_dir, [c.path for c in p.changes] + list(p.state.get("files", {})))


def _sweep_temps(p: Plan) -> list[str]:
    """Remove the temp files a killed render left beside the files stackgen manages."""
    swept = []
    for path in _plan_temps(p):
        path.unlink(missing_ok=True)
        swept.append(str(path.relative_to(p.out_dir)))
    return swept


def _backup_path(target: Path, data: bytes) -> Path:
    """<file>.orig, or .orig.1, .orig.2 ... when an earlier, different backup is in the way."""
    for n in range(1000):
        backup = target.with_name(target.name + (".orig" if n == 0 else f".orig.{n}"))
        try:
            st = os.lstat(backup)
        except FileNotFoundError:
            return backup
        if stat.S_ISREG(st.st_mode) and backup.read_bytes() == data:
            return backup  # the same version is kept already (a forced render ran before)
    raise StackError(Problem(f"{target.name} has 1000 .orig backups already", hint="clean them up"))


def _mode_of(target: Path, default: int) -> int:
    """Keep the permissions of a file stackgen replaces (a user's chmod survives a render)."""
    try:
        return stat.S_IMODE(os.lstat(target).st_mode) & 0o777
    except FileNotFoundError:
        return default


def _clean_rel(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _stage(target: Path, data: bytes, mode: int) -> str:
    """Write `data` to a fsynced temp file beside `target`; returns its path."""
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _atomic_write(target: Path, data: bytes, mode: int) -> None:
    tmp = _stage(target, data, mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
