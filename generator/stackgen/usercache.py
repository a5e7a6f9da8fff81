"""stackgen's folders in the user's cache, `$XDG_CACHE_HOME/stackgen/<name>`: where they are,
when they are trusted, and reading and writing their entries.

Two caches live there: compiled templates (render.py) and the digest of stackgen's own code
(freshness.py, for the render key). This module imports neither Jinja2 nor YAML, so the
up-to-date shortcut can use it without loading them. STACKGEN_NO_CACHE=1 turns both off.

Why a folder is trusted only when it is the user's own: a compiled-template entry is
executable - Jinja2 unpickles its checksum and unmarshals the compiled code, and the render
runs it - so whoever can write a file the cache reads runs code as the user who renders (as
root under `sudo` with the user's HOME); a code digest decides whether a render is skipped.
Shipping precompiled templates would bind the wheel to one Python's bytecode and one Jinja2;
the cache keeps the 35 -> 3 ms render stage with any of them. So a folder is used only when it
is owned by this user with mode 0700 (nobody else can add, replace or rename an entry in it),
and each entry only when it is a regular file this user owns that group and others cannot
write; both are judged by fstat of the descriptor that is then used (the folder's, for every
open, rename and unlink in it; the file's, for the read), never by a stat of a path that could
be swapped in between.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import safeio


def enabled() -> bool:
    return not os.environ.get("STACKGEN_NO_CACHE")


def folder(name: str) -> Path | None:
    """`$XDG_CACHE_HOME/stackgen/<name>` (or ~/.cache/...); None: caching is off, or there is
    no usable home. The folder may not exist yet: open_folder makes it."""
    if not enabled():
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None  # no usable home (expanduser left "~"): do without
    return Path(base) / "stackgen" / name


def open_folder(cache_dir: Path, *, create: bool = True) -> int | None:
    """A descriptor of `cache_dir` when it can be trusted (see above); None: no cache.

    With `create` it makes at most the last two folders (`stackgen/<name>`), and only below
    one that exists: never a missing HOME or XDG_CACHE_HOME. Without, a missing one is None."""
    try:
        fd = os.open(cache_dir.parent.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for name in (cache_dir.parent.name, cache_dir.name):
            if create:
                try:
                    os.mkdir(name, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            parent, fd = fd, os.open(name, safeio.DIR_FLAGS, dir_fd=fd)
            os.close(parent)
    except OSError:
        os.close(fd)
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != 0o700:
        os.close(fd)
        return None
    return fd


def read_entry(dir_fd: int, name: str, limit: int) -> bytes | None:
    """The entry's bytes; None when it is missing, not a regular file of this user's that
    nobody else can write, larger than `limit`, or unreadable."""
    try:
        fd, st = safeio.open_regular(name, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if st.st_uid != os.geteuid() or st.st_mode & 0o022 or st.st_size > limit:
            return None
        return safeio.read_fd(fd, name, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def write_entry(dir_fd: int, name: str, data: bytes) -> None:
    """Replace the entry atomically (a temp file renamed over it); best effort: a failure
    leaves the old entry, or none, and no temp file."""
    tmp = f".{name}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
