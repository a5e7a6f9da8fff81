"""The write stage: classify every rendered file against the disk, then write, or refuse.

Each output is one of
  create     - not on disk yet
  unchanged  - on disk with exactly the rendered bytes (not rewritten: its mtime stays)
  update     - on disk as stackgen last wrote it; the render changed it
  conflict   - on disk, but edited by hand since stackgen wrote it, or never written by stackgen
  remove     - written by an earlier render, no longer rendered, and not edited since
  orphan     - like remove, but edited by hand: left in place and forgotten

The state file (`.stackgen/state.json`) records the hash of every file stackgen wrote. Files
are written atomically (temp file in the same directory, fsync, rename) and the state file
last, so a render killed at any point leaves each file old or new, and the next render
repairs the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import Problem, StackError

if TYPE_CHECKING:  # the plan needs only .path/.text/.target; reading state needs no Jinja2
    from .render import Rendered

STATE_PATH = ".stackgen/state.json"
STATE_FORMAT = 1
WRITES = ("create", "update")


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
    problems: list[Problem] = field(default_factory=list)
    render_key: str | None = None  # freshness.render_key of a full render; recorded by apply

    def by(self, *actions: str) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    @property
    def dirty(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)


def load_state(out_dir: Path) -> dict:
    path = out_dir / STATE_PATH
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
        for entry in state["files"].values():
            if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
                raise ValueError("malformed file entry")
    except ValueError as exc:
        raise StackError(
            Problem(
                f"{path} is damaged ({exc}); stackgen cannot tell which files it owns",
                hint="delete it and run 'stackgen render --force' (hand-edited files are kept as .orig)",
            )
        ) from None
    return state


def plan(out_dir: Path, files: list[Rendered], spec_sha256: str, owners: set[str] | None = None, render_key: str | None = None) -> Plan:
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
        elif f.path in recorded and recorded[f.path]["sha256"] == sha256(old):
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
        elif sha256(old) == entry["sha256"]:
            changes.append(Change(path, "remove", entry.get("target", ""), old=old))
        else:
            changes.append(Change(path, "orphan", entry.get("target", ""), old=old, reason="no longer rendered, edited by hand: left in place"))
    changes.sort(key=lambda c: c.path)
    if problems:
        raise StackError(problems)
    return Plan(out_dir, changes, state, spec_sha256, owners, problems, render_key if owners is None else None)


def apply(p: Plan, *, force: bool = False) -> list[str]:
    """Write the plan. Refuses (StackError) on conflicts unless `force`; returns .orig backups made."""
    conflicts = p.by("conflict")
    if conflicts and not force:
        raise StackError(
            [Problem(f"{c.path}: {c.reason}; not overwriting it") for c in conflicts]
            + [Problem("nothing was written", hint="see the changes with --diff; --force overwrites and keeps each file as <file>.orig")]
        )
    backups: list[str] = []
    touched_dirs: set[Path] = set()
    mode = _file_mode()
    for c in p.changes:
        target = p.out_dir / c.path
        if c.action == "conflict":
            backup = target.with_name(target.name + ".orig")
            _atomic_write(backup, c.old or b"", mode)
            backups.append(c.path + ".orig")
        if c.action in WRITES + ("conflict",):
            _atomic_write(target, c.new.encode(), mode)
            touched_dirs.add(target.parent)
        elif c.action == "remove" and c.old is not None:
            target.unlink(missing_ok=True)
            touched_dirs.add(target.parent)
    _write_state(p, mode)
    for d in touched_dirs:
        _fsync_dir(d)
    return backups


def up_to_date(out_dir: Path, render_key: str) -> int | None:
    """The number of files, when `out_dir` holds exactly what the full render keyed `render_key`
    wrote (every recorded file present, a plain file, with its recorded hash); None otherwise."""
    try:
        state = json.loads((out_dir / STATE_PATH).read_bytes())
        if state.get("render_key") != render_key:
            return None
        recorded = state["files"].items()
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
    if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
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
        return target.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        problems.append(Problem(f"{rel} is a directory where stackgen renders a file", hint="move it away"))
    except NotADirectoryError:
        problems.append(Problem(f"{rel}: a parent of it is a file, not a directory", hint="move it away"))
    except OSError as exc:
        problems.append(Problem(f"cannot read {rel}: {exc.strerror or exc}"))
    return _UNREADABLE


def _write_state(p: Plan, mode: int) -> None:
    files = dict(p.state.get("files", {}))
    for c in p.changes:
        if c.action in WRITES + ("conflict", "unchanged"):
            files[c.path] = {"sha256": sha256(c.new.encode()), "target": c.target}
        elif c.action in ("remove", "orphan"):
            files.pop(c.path, None)
    state = {
        "format": STATE_FORMAT,
        "stackgen": __version__,
        "spec_sha256": p.spec_sha256,
        "files": dict(sorted(files.items())),
    }
    if p.render_key:  # only a full render records it; any other write clears it
        state["render_key"] = p.render_key
    text = json.dumps(state, indent=2, sort_keys=False) + "\n"
    target = p.out_dir / STATE_PATH
    try:
        current = target.read_bytes()
    except OSError:
        current = None
    if current != text.encode():
        _atomic_write(target, text.encode(), mode)


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(target: Path, data: bytes, mode: int) -> None:
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
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
