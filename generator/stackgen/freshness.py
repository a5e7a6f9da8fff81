"""The key of a render: what its output depends on, so an unchanged re-render can be skipped.

A full render records `render_key` in the state file. When the next `render` or
`render --check` computes the same key and every recorded file is on disk with its recorded
hash, rendering again would produce exactly those files: the command is done without
loading YAML or Jinja2. The key covers the spec's bytes, the contents of stackgen's code,
templates and modules, and the Python, Jinja2 and PyYAML in use. STACKGEN_NO_CACHE=1
always takes the full path.

Hashing the contents of the ~80 files of code, templates and modules is most of the key's
cost, so their digest is cached (see code_digest), the way git's index and Python's .pyc
files avoid reading unchanged files again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
from pathlib import Path

from . import safeio, usercache
from .usercache import enabled  # noqa: F401 - freshness.enabled(): whether the shortcut is on

PACKAGE = Path(__file__).resolve().parent


def resource_root(name: str) -> Path:
    """`templates/` or `modules/`: inside the installed wheel, or beside `generator/` in a checkout."""
    packaged = PACKAGE / name
    if packaged.is_dir():
        return packaged
    return PACKAGE.parents[1] / name


def render_key(spec_bytes: bytes, roots: tuple[Path, ...] | None = None) -> str:
    h = hashlib.sha256()
    h.update(repr(sys.version_info[:3]).encode())
    for dep in ("jinja2", "yaml"):  # their __init__ carries the version; find_spec imports nothing
        found = importlib.util.find_spec(dep)
        h.update(Path(found.origin).read_bytes() if found and found.origin else b"-")
    h.update(b"code\0" + code_digest(roots if roots is not None else code_roots()).encode())
    h.update(b"spec\0" + spec_bytes)
    return h.hexdigest()


def code_roots() -> tuple[Path, ...]:
    roots = [PACKAGE]
    for name in ("templates", "modules"):
        root = resource_root(name)
        if root.is_dir() and not root.is_relative_to(PACKAGE):
            roots.append(root)
    return tuple(roots)


# --- the code digest and its cache ---------------------------------------------------------------
#
# The digest of the roots' contents is stored with a signature of their files' stat data
# (relative path, device, inode, size, mtime and ctime in ns): an unchanged signature means
# unchanged files, unless a file was written again within the file system's timestamp
# granularity after it was read (git's "racy clean" problem). So a digest is stored only when
# every file's mtime and ctime were older than SETTLED_NS when reading began; any later
# write then gives the file a newer timestamp. ctime cannot be set back (os.utime sets only
# atime and mtime), so an edit that keeps the size and restores the mtime still shows.
# Python's, Jinja2's and PyYAML's part of the key stays outside: two small files, read
# whole, and a checkout used from two virtualenvs then shares one digest entry.

SETTLED_NS = 2_000_000_000  # FAT's granularity is 2 s; others' is ns to a few ms
_ENTRY_LIMIT = 256  # "<signature> <digest>\n": 130 bytes
_clock = time.time_ns  # the wall clock, as file timestamps are (tests move it)


def code_digest(roots: tuple[Path, ...]) -> str:
    """sha256 over every file of the roots (its root, relative path and content hash), in
    the order of _listing: from the cache when the files' signature is the stored one."""
    started = _clock()
    files = _listing(roots)  # with each file's stat, taken before any content is read: see above
    signature = _signature(files)
    entry = _entry_name(roots)
    digest = _cached(entry, signature)
    if digest is None:
        digest = _content_digest(files)
        if all(max(st.st_mtime_ns, st.st_ctime_ns) < started - SETTLED_NS for *_, st in files):
            _store(entry, signature, digest)
    return digest


_File = tuple[int, str, str, os.stat_result]  # root's index, relative path, path, stat (links followed)


def _listing(roots: tuple[Path, ...]) -> list[_File]:
    """The files of the roots: root by root, each root's sorted by path components."""
    files: list[_File] = []
    for index, root in enumerate(map(os.fspath, roots)):
        found: list[tuple[str, str, os.stat_result]] = []
        _scan(root, "", found)
        found.sort(key=lambda f: f[0].split("/"))
        files += [(index, rel, path, st) for rel, path, st in found]
    return files


def _scan(folder: str, prefix: str, found: list) -> None:
    """os.walk's files (a link to a folder is not followed, an unreadable folder is passed
    over) but for __pycache__/, *.pyc and *.orig; scandir's entries also save a path join."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir():
            if entry.name != "__pycache__" and not entry.is_symlink():
                _scan(entry.path, prefix + entry.name + "/", found)
        elif not entry.name.endswith((".pyc", ".orig")):
            found.append((prefix + entry.name, entry.path, entry.stat()))


def _content_digest(files: list[_File]) -> str:
    h = hashlib.sha256()
    for index, rel, path, _ in files:
        with open(path, "rb") as fh:
            h.update(f"{index}\0{rel}\0".encode() + hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _signature(files: list[_File]) -> str:
    h = hashlib.sha256()
    for index, rel, _, st in files:
        h.update(f"{index}\0{rel}\0{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}\0".encode())
    return h.hexdigest()


def _entry_name(roots: tuple[Path, ...]) -> str:
    """One entry per install (its roots): bounded, where one per signature would grow with every edit."""
    where = "\0".join(os.fspath(root) for root in roots)
    return "code-" + hashlib.sha256(where.encode(errors="surrogateescape")).hexdigest()[:32]


def _cached(entry: str, signature: str) -> str | None:
    """The stored digest when the stored signature is `signature`; None for anything else."""
    where = usercache.folder("keys")
    fd = usercache.open_folder(where, create=False) if where is not None else None
    if fd is None:
        return None
    try:
        data = usercache.read_entry(fd, entry, _ENTRY_LIMIT)
    finally:
        os.close(fd)
    if data is None:
        return None
    try:
        stored, digest = data.decode("ascii").split()
    except ValueError:  # not ASCII (UnicodeDecodeError is one), or not two words
        return None
    return digest if stored == signature and safeio.is_sha256_hex(digest) else None


def _store(entry: str, signature: str, digest: str) -> None:
    where = usercache.folder("keys")
    fd = usercache.open_folder(where) if where is not None else None
    if fd is not None:
        try:
            usercache.write_entry(fd, entry, f"{signature} {digest}\n".encode())
        finally:
            os.close(fd)
