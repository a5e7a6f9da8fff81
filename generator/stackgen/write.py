"""The write stage: classify every rendered file against the disk, then write, or refuse.

Each output is one of
  create     - not on disk yet
  unchanged  - on disk with exactly the rendered bytes (not rewritten: its mtime stays)
  update     - on disk as stackgen last wrote it; the render changed it
  conflict   - on disk, but edited by hand since stackgen wrote it, or never written by stackgen
  remove     - written by an earlier render, no longer rendered, and not edited since
  orphan     - like remove, but edited by hand: left in place and forgotten
  kept       - a file the user owns once it exists (outputs.user_owned) and has changed:
               never written, never a conflict, and forgotten by the state

The state file (`.stackgen/state.json`) records, for every file stackgen wrote, its hash, its
target, and the spec hash and stackgen version that produced it.

Every path stackgen touches in the output directory, whether it comes from the renderer or
from the state file, goes through one gate, `_Tree.locate`: it refuses a path that leaves
the tree, and reaches the file's folder one component at a time from the output directory's
descriptor with O_NOFOLLOW, so neither a symbolic link that was there before the render nor
one swapped in while it runs leads outside. Reads go through `safeio` (regular files only,
bounded, never blocking on a FIFO).

A render that writes works under an exclusive lock on `.stackgen/`, and reads the state and
classifies the files again once it holds it (so two renders never work from one old state):
  1. every new file (and `.orig` backup) is written in `.stackgen/staging/`, then all of them
     are fsynced in one pass (written first, synced after: see `_sync_staged`);
  2. the state file is rewritten as a journal: each file about to be written is recorded with
     its new hash, and the hashes stackgen wrote before it kept under "previous";
  3. every file is checked to be still as it was classified; then each one, checked again
     just before, is renamed into place (a new file is linked, which fails if one appeared);
  4. the state file is written again, without the journal, and the staging folder removed.
A render killed at any point thus leaves every file old or new, and both versions are known
to be stackgen's, so the next render, of this spec or of another, takes over without a false
conflict; whatever a killed render left in `.stackgen/staging/` is swept by the next one.

A hand edit saved while a render runs is never overwritten if it lands before step 3's
check of its file; if it is seen in the check of every file, nothing is written (the state
is put back). POSIX has no rename-if-unchanged, so an edit saved in the microseconds between
a file's own check and its rename can still be replaced; the renders before it are then done
and the render stops there, recorded by the journal.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from . import __version__, safeio
from .errors import Problem, StackError, printable
from .outputs import is_output, user_owned
from .records import dataclass, field  # as dataclasses', without exec() or importing dataclasses

if TYPE_CHECKING:  # the plan needs only .path/.text/.target; reading state needs no Jinja2
    from .render import Rendered

STATE_DIR = ".stackgen"
STATE_NAME = "state.json"
STATE_PATH = f"{STATE_DIR}/{STATE_NAME}"
STAGING = "staging"  # .stackgen/staging/: temp files, and nothing else, live there
STATE_FORMAT = 1
WRITES = ("create", "update")
QUIET = ("unchanged", "kept")  # nothing to do, nothing to report
MAX_STATE_BYTES = 8 << 20  # about 25,000 files' entries; a bigger state file is damaged
MAX_FILE_BYTES = 64 << 20  # no rendered file comes near; a bigger file in the way is not ours
_OWNER = r"[a-z][a-z-]{0,31}"  # compiled at first use: a render into a new folder reads no state
_STATE_KEYS = {"format", "stackgen", "files", "incomplete", "render_key", "spec", "warnings"}
# A warning the full render printed (errors.Problem without its file: the spec's name is the
# one the command is given), recorded with render_key and printed again by the shortcut.
WARNING_FIELDS = ("message", "line", "col", "source_line", "hint")
MAX_WARNINGS = 64
MAX_WARNING_TEXT = 4096
MAX_SPEC_PATH = 4096
_ENTRY_KEYS = {"sha256", "target", "spec_sha256", "stackgen", "previous"}
_ABSENT = None  # what a create expects to find at its path


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
    warnings: list[dict] = field(default_factory=list)  # what that render warned of (WARNING_FIELDS)
    swept: list[str] = field(default_factory=list)  # stale temp files removed by apply()
    files: list = field(default_factory=list)  # the rendered files: apply() classifies them again
    state_raw: bytes | None = None  # the state file's bytes as read (None: there was none)
    spec_path: str | None = None  # the spec, relative to out_dir, recorded in the state file

    def by(self, *actions: str) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    @property
    def dirty(self) -> bool:
        return any(c.action not in QUIET for c in self.changes)


def load_state(out_dir: Path) -> dict:
    with _Tree(out_dir) as tree:
        return _load_state(tree)[0]


def plan(
    out_dir: Path,
    files: list[Rendered],
    spec_sha256: str,
    owners: set[str] | None = None,
    render_key: str | None = None,
    spec_path: str | None = None,
    warnings: list[dict] | None = None,
) -> Plan:
    """Classify each rendered file against what is on disk. Reads only; writes nothing.
    `spec_path` (relative to out_dir) is recorded in the state, so that `stackgen render` run
    inside the tree finds its spec; `warnings` (the spec's, as WARNING_FIELDS) with the
    render_key, so that the up-to-date shortcut prints them as the full render did."""
    with _Tree(out_dir) as tree:
        p = _classify(tree, files, spec_sha256, owners, render_key)
    p.spec_path = spec_path
    p.warnings = list(warnings or ())
    try:
        _check_warnings(p.warnings)  # what the state's reader accepts (a spec line may be 1 MiB)
    except ValueError:
        p.render_key, p.warnings = None, []  # unrecordable: no shortcut, so the full path prints them
    return p


def recorded_spec(out_dir: Path) -> str | None:
    """The spec path (relative to out_dir) that the tree's last render recorded, if any."""
    with _Tree(out_dir) as tree:
        return _load_state(tree)[0].get("spec")


def apply(p: Plan, *, force: bool = False) -> list[str]:
    """Write the plan. Refuses (StackError) on conflicts unless `force`; returns .orig backups made.

    Every file is staged (written and fsynced) before any is renamed into place, so an
    OSError while writing (a full disk, a read-only directory) changes nothing; it becomes
    a StackError naming the file. `p` is updated to what was done (it is classified again
    under the lock).
    """
    _refuse_conflicts(p, force)
    job = _Job(p, force)
    try:
        with _Tree(p.out_dir) as tree:
            if not _has_work(p) and not _staging_leftovers(tree):
                return []  # nothing to do: not even the lock, so a read-only tree that is up to date passes
            with _locked(tree):
                try:
                    return job.run(tree)
                finally:
                    job.tidy(tree)
    except OSError as exc:
        raise StackError(
            Problem(
                f"cannot write {job.doing} in {p.out_dir}: {exc.strerror or exc}",
                hint="every file is either as it was or fully rendered; fix the cause and run 'stackgen render' again",
            )
        ) from None


def up_to_date(out_dir: Path, render_key: str) -> tuple[int, list[dict]] | None:
    """(the number of files, the warnings that render printed), when `out_dir` holds exactly
    what the full render keyed `render_key` wrote (every recorded file present, a plain file,
    with its recorded hash); None otherwise."""
    try:
        with _Tree(out_dir) as tree:
            state, _ = _load_state(tree)
            if state.get("render_key") != render_key or _staging_leftovers(tree):
                return None  # another render, or a killed one's temp files: the full path decides
            for rel, entry in state["files"].items():
                data = tree.read(rel)
                if data is None or sha256(data) != entry["sha256"]:
                    return None
            return len(state["files"]), state.get("warnings", [])
    except (OSError, StackError):
        return None  # anything unexpected: the full pipeline decides, and explains


def diff(p: Plan) -> str:
    import difflib

    out = []
    for c in p.changes:
        if c.action in QUIET:
            continue
        old = (c.old or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
        new = (c.new or "").splitlines(keepends=True)
        a = "/dev/null" if c.old is None else f"a/{c.path}"
        b = "/dev/null" if c.new is None else f"b/{c.path}"
        out.extend(difflib.unified_diff(old, new, a, b))
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n\\ No newline at end of file\n"
    return "".join(out)


# --- the output directory, reached through directory descriptors -----------------------------


class _Tree:
    """The output directory. Each folder below it is opened relative to its parent's
    descriptor with O_NOFOLLOW|O_DIRECTORY and kept open, and files are opened, created,
    renamed and removed relative to those descriptors (the *at() system calls): a path
    never passes through a symbolic link, and a link swapped in mid-run changes nothing."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self._fds: dict[tuple[str, ...], int] = {}
        self._missing: set[tuple[str, ...]] | None = None  # in a classification pass: folders found missing

    def __enter__(self) -> _Tree:
        return self

    def __exit__(self, *exc) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def locate(self, rel: str, *, create: bool = False) -> tuple[int | None, str]:
        """The gate: (descriptor of rel's folder, or None where it does not exist; rel's name)."""
        if not _clean_rel(rel):
            raise StackError(Problem(f"refusing to write {rel!r}: the path leaves the output directory"))
        *parents, name = rel.split("/")
        return self.folder(tuple(parents), create=create, rel=rel), name

    @contextmanager
    def classifying(self) -> Iterator[None]:
        """One classification pass: a folder found missing is taken as missing for the rest of
        it, not opened again for each file beneath it (a fresh render's whole tree). The next
        pass (under the lock) starts afresh, so it sees a folder made meanwhile by anyone."""
        self._missing = set()
        try:
            yield
        finally:
            self._missing = None

    def folder(self, parts: tuple[str, ...], *, create: bool = False, rel: str = "") -> int | None:
        fd = self._fds.get(parts)
        if fd is not None:
            return fd
        if self._missing is not None:
            if not create and parts in self._missing:
                return None
            if create:
                self._missing.clear()  # it may make folders: none is known to be missing any more
        if not parts:
            fd = self._open_root(create)
        else:
            parent = self.folder(parts[:-1], create=create, rel=rel)
            if parent is None:
                return None
            fd = self._open_sub(parent, parts, create, rel or "/".join(parts))
        if fd is not None:
            self._fds[parts] = fd
        elif self._missing is not None:
            self._missing.add(parts)
        return fd

    def _open_root(self, create: bool) -> int | None:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # the root itself may be a link (-o's choice)
        try:
            return os.open(self.out_dir, flags)
        except FileNotFoundError:
            if not create:
                return None
        except NotADirectoryError:
            raise StackError(Problem(f"output directory {self.out_dir} exists and is not a directory")) from None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return os.open(self.out_dir, flags)

    def _open_sub(self, parent: int, parts: tuple[str, ...], create: bool, rel: str) -> int | None:
        try:
            return self._open_dir(parent, parts, rel)
        except FileNotFoundError:
            if not create:
                return None
        try:
            os.mkdir(parts[-1], 0o777, dir_fd=parent)
        except FileExistsError:
            pass  # made at this moment by someone else: opened (and judged) like any other
        return self._open_dir(parent, parts, rel)

    def _open_dir(self, parent: int, parts: tuple[str, ...], rel: str) -> int:
        try:
            return os.open(parts[-1], safeio.DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symbolic link, or a file
                self._blocked(parent, parts, rel)
            raise

    def _blocked(self, parent: int, parts: tuple[str, ...], rel: str):
        where = self.out_dir.joinpath(*parts)
        try:
            is_link = stat.S_ISLNK(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        except OSError:
            is_link = False
        if is_link:
            raise StackError(Problem(f"refusing to write {rel}: {where} is a symbolic link", hint="stackgen writes real files only; remove the link"))
        raise StackError(Problem(f"{rel}: a parent of it is a file, not a directory", hint="move it away"))

    def read_raw(self, rel: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        """rel's bytes, None when it does not exist; safeio's OSErrors for anything else."""
        dir_fd, name = self.locate(rel)
        if dir_fd is None:
            return None
        try:
            return safeio.read_regular(name, dir_fd=dir_fd, limit=limit)
        except FileNotFoundError:
            return None

    def read(self, rel: str) -> bytes | None:
        """rel's bytes, None when it does not exist; a StackError that says why it cannot be read."""
        try:
            return self.read_raw(rel)
        except safeio.NotRegularFile as exc:
            if exc.kind == "a symbolic link":
                problem = Problem(f"refusing to write {rel}: {self.out_dir / rel} is a symbolic link", hint="stackgen writes real files only; remove the link")
            elif exc.kind == "a directory":
                problem = Problem(f"{rel} is a directory where stackgen renders a file", hint="move it away")
            else:
                problem = Problem(f"{rel} is not a regular file ({exc.kind})", hint="move it away")
        except safeio.TooLarge:
            problem = Problem(f"{rel} is larger than {MAX_FILE_BYTES >> 20} MiB, so not a file stackgen rendered", hint="move it away")
        except NotADirectoryError:
            problem = Problem(f"{rel}: a parent of it is a file, not a directory", hint="move it away")
        except OSError as exc:
            problem = Problem(f"cannot read {rel}: {exc.strerror or exc}")
        raise StackError(problem)


# --- the state file -----------------------------------------------------------------------------


def _load_state(tree: _Tree) -> tuple[dict, bytes | None]:
    """The validated state and its bytes ({"files": {}} and None when there is none)."""
    try:
        raw = tree.read_raw(STATE_PATH, MAX_STATE_BYTES)
    except safeio.TooLarge:
        raise _damaged(tree, f"it is larger than {MAX_STATE_BYTES >> 20} MiB") from None
    except safeio.NotRegularFile as exc:
        raise _damaged(tree, f"it is {exc.kind}, not a regular file") from None
    except OSError as exc:
        raise StackError(Problem(f"cannot read {tree.out_dir / STATE_PATH}: {exc.strerror or exc}")) from None
    if raw is None:
        return {"format": STATE_FORMAT, "files": {}}, None
    try:
        return _parse_state(raw), raw
    except (ValueError, RecursionError) as exc:
        raise _damaged(tree, str(exc) or type(exc).__name__) from None


def _parse_state(raw: bytes) -> dict:
    """The state file's content with every field checked: one place, so that nothing later
    meets a value of the wrong type. ValueError says what is wrong."""
    state = json.loads(raw)
    if not isinstance(state, dict) or not isinstance(state.get("files"), dict):
        raise ValueError("not a stackgen state file")
    _no_unknown_keys(state, _STATE_KEYS, "the file")
    if type(state.get("format")) is not int or state["format"] != STATE_FORMAT:
        raise ValueError(f"format {state.get('format')!r}, where {STATE_FORMAT} is expected")
    _check_type(state, "stackgen", str, "the file")
    _check_type(state, "incomplete", bool, "the file")
    _check_type(state, "spec", str, "the file")
    if "spec" in state and not _spec_path_ok(state["spec"]):
        raise ValueError("a malformed spec path")
    if "render_key" in state and not safeio.is_sha256_hex(state["render_key"]):
        raise ValueError("a malformed render_key")
    if "warnings" in state:
        _check_warnings(state["warnings"])
    for rel, entry in state["files"].items():
        if not _clean_rel(rel) or not rel.isprintable() or not is_output(rel):
            raise ValueError(f"it lists the path {printable(rel)!r}, which stackgen never writes")
        _check_entry(rel, entry)
    return state


def _check_warnings(warnings: object) -> None:
    """Each a Problem's text fields (bounded strings; they are printed through Problem.format,
    which escapes them for the terminal) and its position (positive ints), or null."""
    if not isinstance(warnings, list) or len(warnings) > MAX_WARNINGS:
        raise ValueError("a malformed warnings list")
    for w in warnings:
        if not isinstance(w, dict) or set(w) != set(WARNING_FIELDS):
            raise ValueError("a malformed warning")
        for key in ("message", "source_line", "hint"):
            if not (key != "message" and w[key] is None or isinstance(w[key], str) and len(w[key]) <= MAX_WARNING_TEXT):
                raise ValueError(f"a warning with a malformed {key}")
        for key in ("line", "col"):
            if not (w[key] is None or type(w[key]) is int and w[key] > 0):
                raise ValueError(f"a warning with a malformed {key}")


def _check_entry(rel: str, entry: object) -> None:
    where = f"the entry for {rel}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is not an object")
    _no_unknown_keys(entry, _ENTRY_KEYS, where)
    for key in ("sha256", "spec_sha256"):
        if not safeio.is_sha256_hex(entry.get(key)):
            raise ValueError(f"{where} has a malformed {key}")
    if not isinstance(entry.get("target"), str) or not re.fullmatch(_OWNER, entry["target"]):
        raise ValueError(f"{where} has a malformed target")
    if not isinstance(entry.get("stackgen"), str):
        raise ValueError(f"{where} has a malformed stackgen version")
    previous = entry.get("previous", [])
    if not isinstance(previous, list) or not all(safeio.is_sha256_hex(h) for h in previous):
        raise ValueError(f"{where} has a malformed previous list")


def _no_unknown_keys(obj: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(obj) - known, key=str)
    if unknown:
        raise ValueError(f"{where} has the unknown key {unknown[0]!r}")


def _check_type(obj: dict, key: str, kind: type, where: str) -> None:
    if key in obj and type(obj[key]) is not kind:
        raise ValueError(f"{where} has a malformed {key}")


def _damaged(tree: _Tree, why: str) -> StackError:
    return StackError(
        Problem(
            f"{tree.out_dir / STATE_PATH} is damaged ({why}); stackgen cannot tell which files it owns",
            hint="delete it and run 'stackgen render --force' (hand-edited files are kept as .orig)",
        )
    )


def _owned(entry: dict | None, data: bytes) -> bool:
    """Whether `data` is something stackgen wrote at this path (as recorded in `entry`)."""
    if entry is None:
        return False
    digest = sha256(data)
    return digest == entry["sha256"] or digest in entry.get("previous", ())


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
        elif c.action == "kept":
            files.pop(c.path, None)  # the user's file now: no later render removes it
    state = {"format": STATE_FORMAT, "stackgen": __version__, "files": dict(sorted(files.items()))}
    spec = p.spec_path or p.state.get("spec")
    if spec:
        state["spec"] = spec
    if journal:
        state["incomplete"] = True
    elif p.render_key:  # only a completed full render records it; any other write clears it
        state["render_key"] = p.render_key
        if p.warnings:
            state["warnings"] = p.warnings
    return (json.dumps(state, indent=2) + "\n").encode()


# --- classifying ----------------------------------------------------------------------------------


def _classify(tree: _Tree, files: list, spec_sha256: str, owners: set[str] | None, render_key: str | None) -> Plan:
    with tree.classifying():
        return _classify_pass(tree, files, spec_sha256, owners, render_key)


def _classify_pass(tree: _Tree, files: list, spec_sha256: str, owners: set[str] | None, render_key: str | None) -> Plan:
    state, raw = _load_state(tree)
    recorded: dict = state["files"]
    changes: list[Change] = []
    problems: list[Problem] = []
    rendered = {f.path for f in files}
    for f in files:
        old = _read_for_plan(tree, f.path, problems)
        if old is _UNREADABLE:
            continue
        new_bytes = f.text.encode()
        if old is None:
            changes.append(Change(f.path, "create", f.target, f.text))
        elif old == new_bytes:
            changes.append(Change(f.path, "unchanged", f.target, f.text, old))
        elif user_owned(f.path):
            changes.append(Change(f.path, "kept", f.target, f.text, old, "yours: stackgen writes it only when it is missing"))
        elif _owned(recorded.get(f.path), old):
            changes.append(Change(f.path, "update", f.target, f.text, old))
        else:
            why = "edited since stackgen wrote it" if f.path in recorded else "exists, and stackgen did not write it"
            changes.append(Change(f.path, "conflict", f.target, f.text, old, why))
    for path, entry in sorted(recorded.items()):
        if path in rendered or (owners is not None and entry["target"] not in owners):
            continue  # another target's file: --only neither reads nor touches it
        old = _read_for_plan(tree, path, problems)
        if old is _UNREADABLE:
            continue
        if old is None:
            changes.append(Change(path, "remove", entry["target"], reason="already gone"))
        elif _owned(entry, old):
            changes.append(Change(path, "remove", entry["target"], old=old))
        else:
            changes.append(Change(path, "orphan", entry["target"], old=old, reason="no longer rendered, edited by hand: left in place"))
    changes.sort(key=lambda c: c.path)
    if problems:
        raise StackError(problems)
    key = render_key if owners is None else None
    return Plan(tree.out_dir, changes, state, spec_sha256, owners, key, files=list(files), state_raw=raw)


_UNREADABLE = object()


def _read_for_plan(tree: _Tree, rel: str, problems: list[Problem]) -> bytes | None | object:
    try:
        return tree.read(rel)
    except StackError as exc:
        problems.extend(exc.problems)
        return _UNREADABLE


def _refuse_conflicts(p: Plan, force: bool) -> None:
    conflicts = p.by("conflict")
    if conflicts and not force:
        raise StackError(
            [Problem(f"{c.path}: {c.reason}; not overwriting it") for c in conflicts]
            + [Problem("nothing was written", hint="see the changes with --diff; --force overwrites and keeps each file as <file>.orig")]
        )


def _has_work(p: Plan) -> bool:
    removes = [c for c in p.by("remove") if c.old is not None]
    return bool(p.by(*WRITES, "conflict") or removes or p.state_raw != _state_bytes(p, journal=False))


def _changed_while_rendering(paths: list[str], written: int = 0) -> StackError:
    problems = [Problem(f"{path} changed while stackgen was rendering; not overwriting it") for path in paths]
    if written:
        problems.append(
            Problem(
                f"{written} file(s) before it were written, the rest were not",
                hint="run 'stackgen render' again: it finishes the job and reports your edit as a conflict",
            )
        )
    else:
        problems.append(Problem("nothing was written", hint="run 'stackgen render' again"))
    return StackError(problems)


# --- writing ---------------------------------------------------------------------------------------


@contextmanager
def _locked(tree: _Tree) -> Iterator[None]:
    """Hold an exclusive lock on `.stackgen/` (the directory itself: no lock file to leave behind)."""
    fd = tree.folder((STATE_DIR,), create=True, rel=STATE_PATH)
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StackError(Problem(f"another stackgen render is writing {tree.out_dir}", hint="wait for it to finish, then run again")) from None
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass
class _Staged:
    rel: str  # what it becomes, for messages
    tmp: str  # its name in .stackgen/staging/
    dir_fd: int  # the folder it goes to
    name: str
    expect: bytes | None  # what must be at the target just before (None: nothing)
    fd: int | None = None  # still open from writing it, until it is fsynced (see _stage_all)


class _Job:
    """One apply() under the lock; `doing` names the file an OSError is about."""

    def __init__(self, p: Plan, force: bool):
        self.p = p
        self.force = force
        self.doing = STATE_DIR
        self.mode = _file_mode()
        self.touched: dict[int, None] = {}  # folder descriptors to fsync, in order

    def run(self, tree: _Tree) -> list[str]:
        p = self.p
        self._classify_again(tree)
        p.swept = _sweep_staging(tree)
        if not _has_work(p):
            return []
        writes = p.by(*WRITES, "conflict")
        removes = [c for c in p.by("remove") if c.old is not None]
        self._preflight(tree, [c.path for c in writes + removes])
        staging = tree.folder((STATE_DIR, STAGING), create=True, rel=STATE_PATH) if writes else None
        staged: list[_Staged] = []
        installed = 0
        try:
            backups = self._stage_all(tree, staging, writes, staged)
            current = p.state_raw
            if writes:  # the journal: any next render recognises either version of each file
                self.doing = STATE_PATH
                current = _state_bytes(p, journal=True)
                self._install_state(tree, current)
            moved = [s.rel for s in staged if not self._still(s.dir_fd, s.name, s.expect)]
            moved += [c.path for c in removes if not self._still(*tree.locate(c.path), c.old)]
            if moved:
                self._put_back_state(tree, current)
                raise _changed_while_rendering(moved)
            for s in staged:
                self.doing = s.rel
                if not self._install(staging, s):
                    raise _changed_while_rendering([s.rel], written=installed)
                installed += 1
        finally:
            for s in staged[installed:]:
                _unlink_quietly(s.tmp, staging)
        self._remove_all(tree, removes)
        self._finish(tree, current)
        return backups

    def _classify_again(self, tree: _Tree) -> None:
        """The state and the files, read again now that this render holds the lock: what it
        writes is computed from them, never from a state another render has since replaced."""
        p = self.p
        fresh = _classify(tree, p.files, p.spec_sha256, p.owners, p.render_key)
        before = {c.path: c.old for c in p.changes}
        now = {c.path: c.old for c in fresh.changes}
        moved = sorted(path for path in before.keys() | now.keys() if before.get(path) != now.get(path))
        if moved:
            raise _changed_while_rendering(moved)
        p.changes, p.state, p.state_raw = fresh.changes, fresh.state, fresh.state_raw
        _refuse_conflicts(p, self.force)

    def _preflight(self, tree: _Tree, paths: list[str]) -> None:
        """Meet a folder this render cannot write into (or rename across) before anything
        has changed: the files are staged in .stackgen/ and renamed into place only at the end."""
        home = os.fstat(tree.folder((STATE_DIR,), rel=STATE_PATH)).st_dev
        checked: set[int] = set()  # a folder's descriptor: the same answer for each of its files
        for rel in paths:
            self.doing = rel
            dir_fd, _ = tree.locate(rel, create=True)
            if dir_fd in checked:
                continue
            checked.add(dir_fd)
            if not os.access(".", os.W_OK | os.X_OK, dir_fd=dir_fd, effective_ids=True):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            if os.fstat(dir_fd).st_dev != home:
                raise OSError(errno.EXDEV, f"its folder is on another file system than {STATE_DIR}/, where stackgen stages files")

    def _stage_all(self, tree: _Tree, staging: int | None, writes: list[Change], staged: list[_Staged]) -> list[str]:
        """Every new file and backup, written and fsynced in the staging folder: a full disk
        or an I/O error is met before anything visible has changed."""
        backups = []
        try:
            for c in writes:
                self.doing = c.path
                dir_fd, name = tree.locate(c.path, create=True)
                # a new file gets the default mode (one that appears meanwhile is never replaced)
                mode = self.mode if c.old is None else _mode_of(dir_fd, name, self.mode)
                if c.action == "conflict":
                    backup, exists = _backup_name(dir_fd, name, c.old or b"")
                    rel = c.path.rsplit("/", 1)[0] + "/" + backup if "/" in c.path else backup
                    self.doing = rel
                    if not exists:
                        tmp, fd = _stage(staging, backup, c.old or b"", mode, keep=len(staged) < KEEP_OPEN)
                        staged.append(_Staged(rel, tmp, dir_fd, backup, _ABSENT, fd))
                    backups.append(rel)
                    self.doing = c.path
                tmp, fd = _stage(staging, name, c.new.encode(), mode, keep=len(staged) < KEEP_OPEN)
                staged.append(_Staged(c.path, tmp, dir_fd, name, c.old, fd))
            for s in staged:  # all written first, then all synced: see _sync_staged
                self.doing = s.rel
                _sync_staged(staging, s)
        finally:
            for s in staged:
                _close_quietly(s)
        return backups

    def _still(self, dir_fd: int | None, name: str, expect: bytes | None) -> bool:
        """Whether the file is as this render found it (`expect`; None: absent)."""
        if dir_fd is None:
            return expect is None
        try:
            now = safeio.read_regular(name, dir_fd=dir_fd, limit=MAX_FILE_BYTES)
        except FileNotFoundError:
            now = None
        except OSError:
            return False  # something else is there now
        return now == expect

    def _install(self, staging: int, s: _Staged) -> bool:
        """Put one staged file in place, unless its target changed; False if it did."""
        if s.expect is _ABSENT:
            try:  # link() never replaces: a file that appeared since is kept, atomically
                os.link(s.tmp, s.name, src_dir_fd=staging, dst_dir_fd=s.dir_fd, follow_symlinks=False)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                    raise
                if not self._still(s.dir_fd, s.name, _ABSENT):  # no hard links here: check, then rename
                    return False
                os.replace(s.tmp, s.name, src_dir_fd=staging, dst_dir_fd=s.dir_fd)
            else:
                _unlink_quietly(s.tmp, staging)
        else:
            if not self._still(s.dir_fd, s.name, s.expect):  # the last look, as close to the rename as can be
                return False
            os.replace(s.tmp, s.name, src_dir_fd=staging, dst_dir_fd=s.dir_fd)
        self.touched[s.dir_fd] = None
        return True

    def _remove_all(self, tree: _Tree, removes: list[Change]) -> None:
        for c in removes:
            self.doing = c.path
            dir_fd, name = tree.locate(c.path)
            if not self._still(dir_fd, name, c.old):
                c.action, c.reason = "orphan", "edited while stackgen was rendering: left in place"
                continue
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            self.touched[dir_fd] = None

    def _install_state(self, tree: _Tree, data: bytes) -> None:
        staging = tree.folder((STATE_DIR, STAGING), create=True, rel=STATE_PATH)
        state_dir = tree.folder((STATE_DIR,), rel=STATE_PATH)
        tmp, fd = _stage(staging, STATE_NAME, data, self.mode, keep=True)
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, STATE_NAME, src_dir_fd=staging, dst_dir_fd=state_dir)
        except BaseException:
            _unlink_quietly(tmp, staging)
            raise
        os.fsync(state_dir)  # durable before any file it describes is renamed

    def _put_back_state(self, tree: _Tree, current: bytes | None) -> None:
        """Undo the journal: nothing was written after all."""
        if current == self.p.state_raw:
            return
        self.doing = STATE_PATH
        if self.p.state_raw is None:
            os.unlink(STATE_NAME, dir_fd=tree.folder((STATE_DIR,), rel=STATE_PATH))
        else:
            self._install_state(tree, self.p.state_raw)

    def _finish(self, tree: _Tree, current: bytes | None) -> None:
        self.doing = STATE_PATH
        for fd in self.touched:  # the files' renames are durable before the state says so
            os.fsync(fd)
        final = _state_bytes(self.p, journal=False)
        if current != final:
            self._install_state(tree, final)

    def tidy(self, tree: _Tree) -> None:
        """Remove the staging folder once it is empty (a render that wrote leaves no trace)."""
        try:
            os.rmdir(STAGING, dir_fd=tree.folder((STATE_DIR,), rel=STATE_PATH))
        except OSError:
            pass  # not there, or not empty (a file we could not remove): the next render sweeps it


def _staging_leftovers(tree: _Tree) -> list[str]:
    """What a killed render left in .stackgen/staging/ (every entry there is stackgen's)."""
    try:
        fd = tree.folder((STATE_DIR, STAGING), rel=STATE_PATH)
        return sorted(os.listdir(fd)) if fd is not None else []
    except StackError:
        return []  # .stackgen is no folder of ours: plan() reports it


def _sweep_staging(tree: _Tree) -> list[str]:
    """Remove the temp files a killed render left; returns their paths (printable)."""
    fd = tree.folder((STATE_DIR, STAGING), rel=STATE_PATH)
    swept = []
    for name in _staging_leftovers(tree):
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            continue  # no render makes one; not ours to remove
        swept.append(f"{STATE_DIR}/{STAGING}/{name}")
    return swept


KEEP_OPEN = 256  # staged files kept open from write to fsync; more are reopened by name (fd limit: 1,024)


def _stage(staging: int, label: str, data: bytes, mode: int, *, keep: bool = False) -> tuple[str, int | None]:
    """Write `data` to a new file in the staging folder: (its name there, its descriptor when
    `keep`, else None). Not yet durable: the caller fsyncs it (`_sync_staged`) before anything
    refers to it, through the kept descriptor (no second open) or by name."""
    base = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in label[:64])
    for _ in range(100):
        tmp = f"{base}.{os.urandom(4).hex()}.tmp"  # what secrets.token_hex does, without importing it
        try:
            # created with at most `mode` (the umask or a default ACL may take bits away)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o777, dir_fd=staging)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temp file name", tmp)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:  # a read, where an fchmod would change the inode each time
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        _start_writeback(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp, staging)
        raise
    if keep:
        return tmp, fd
    os.close(fd)
    return tmp, None


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's pages now (on Linux, POSIX_FADV_DONTNEED
    starts asynchronous writeback of dirty pages), so the fsync pass after finds most of them
    on disk. A hint only: durability comes from the fsync."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except (AttributeError, OSError):
        pass  # no posix_fadvise here (macOS), or a file system without it


def _sync_staged(staging: int, s: _Staged) -> None:
    """fsync one staged file, after all of them are written. Syncing each file right after
    writing it made every fsync wait for that one file's writeback; written first (writeback
    started as each is written) and synced in one pass, most are on disk by their fsync:
    2,000 files' fsyncs took 0.9 s the first way and 0.15 s this way. The first KEEP_OPEN
    files are still open from writing; the rest are reopened by name (no 2,000 descriptors
    held open: the usual limit is 1,024); the staging folder is stackgen's own and held open."""
    fd = s.fd if s.fd is not None else os.open(s.tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=staging)
    s.fd = None
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _close_quietly(s: _Staged) -> None:
    if s.fd is not None:
        fd, s.fd = s.fd, None
        try:
            os.close(fd)
        except OSError:
            pass


def _backup_name(dir_fd: int, name: str, data: bytes) -> tuple[str, bool]:
    """<name>.orig, or .orig.1, .orig.2 ... when an earlier, different backup is in the way;
    and whether that backup already holds `data` (a forced render ran before)."""
    for n in range(1000):
        backup = name + (".orig" if n == 0 else f".orig.{n}")
        try:
            if safeio.read_regular(backup, dir_fd=dir_fd, limit=MAX_FILE_BYTES) == data:
                return backup, True
        except FileNotFoundError:
            return backup, False
        except OSError:
            pass  # a link, a folder, something huge: not a backup of ours; try the next name
    raise StackError(Problem(f"{name} has 1000 .orig backups already", hint="clean them up"))


def _mode_of(dir_fd: int, name: str, default: int) -> int:
    """Keep the permissions of a file stackgen replaces (a user's chmod survives a render)."""
    try:
        return stat.S_IMODE(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode) & 0o777
    except FileNotFoundError:
        return default


def _spec_path_ok(spec: str) -> bool:
    """A recorded spec: a relative path (`../` steps, then clean parts) to a .yaml/.yml file,
    printable, of bounded length; never absolute, never a device or /proc path."""
    if not spec or len(spec) > MAX_SPEC_PATH or not spec.isprintable() or not spec.endswith((".yaml", ".yml")):
        return False
    parts = spec.split("/")
    ups = len(parts) - len(list(itertools.dropwhile(lambda p: p == "..", parts)))
    return _clean_rel("/".join(parts[ups:]))


def _clean_rel(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or "\0" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _unlink_quietly(name: str, dir_fd: int | None) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
