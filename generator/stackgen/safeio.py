"""Reading files that anyone could have put in the way: the one helper the writer, the
freshness check and the template cache read through.

A path is opened with O_NOFOLLOW (a symbolic link is refused, not followed) and O_NONBLOCK
(opening a FIFO does not wait for a writer), then judged by fstat of the opened descriptor,
never by a stat of the path (which a swap between the stat and the open would fool). Only a
regular file is read, and never more than the caller's limit.
"""

from __future__ import annotations

import errno
import os
import stat

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SPEC_BYTES = 1024 * 1024  # a spec is a few KiB; a 1,000-service spec is ~100 KiB
_HEX = "0123456789abcdef"


class NotRegularFile(OSError):
    """The path is a symbolic link, directory, FIFO, socket or device. `.kind` says which."""

    def __init__(self, name: str, kind: str):
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", name)
        self.kind = kind


class TooLarge(OSError):
    def __init__(self, name: str, limit: int):
        super().__init__(errno.EFBIG, f"larger than {limit} bytes", name)
        self.limit = limit


def kind_of(mode: int) -> str:
    for test, kind in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def open_regular(name: str | os.PathLike, *, dir_fd: int | None = None, follow: bool = False) -> tuple[int, os.stat_result]:
    """An fd of the regular file `name` (relative to `dir_fd`) and its fstat; the caller closes it.
    `follow` follows a symbolic link (a file the user named, not one in a tree stackgen
    writes); what it leads to must still be a regular file.

    Raises FileNotFoundError, NotADirectoryError, NotRegularFile, or another OSError."""
    try:
        fd = os.open(name, OPEN_FLAGS & ~os.O_NOFOLLOW if follow else OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise NotRegularFile(os.fspath(name), "a symbolic link") from None
        if exc.errno == errno.ENXIO:  # a socket (or a device without its driver)
            raise NotRegularFile(os.fspath(name), "a socket or device") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(os.fspath(name), kind_of(st.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_fd(fd: int, name: str | os.PathLike, limit: int) -> bytes:
    """At most `limit` bytes of an open file; TooLarge when it holds more (it may grow while read)."""
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge(os.fspath(name), limit)


def read_regular(name: str | os.PathLike, *, dir_fd: int | None = None, limit: int) -> bytes:
    """The bytes of the regular file `name`, at most `limit` of them (see open_regular)."""
    fd, st = open_regular(name, dir_fd=dir_fd)
    try:
        if st.st_size > limit:
            raise TooLarge(os.fspath(name), limit)
        return read_fd(fd, name, limit)
    finally:
        os.close(fd)


def is_sha256_hex(value: object) -> bool:
    """Whether a value read from such a file is a sha256 as hexdigest() writes it."""
    # [0-9a-f]{64} without compiling a pattern: 64 characters, none left once the digits are stripped
    return isinstance(value, str) and len(value) == 64 and not value.strip(_HEX)


def read_spec_bytes(path: str | os.PathLike, display: str, limit: int, *, regular_only: bool = False) -> bytes:
    """The spec's bytes, read once and at most `limit` + 1 of them (the caller judges the size).

    Unlike the writer's reads this follows links and reads pipes: a spec named on the
    command line may be `/dev/stdin`, which can be read only once, so it is read here and
    the bytes are handed on (to the render key and to the loader)."""
    from .errors import Problem, StackError

    try:
        if regular_only:  # a path named by data (a state file), not by the user: no FIFO, no device
            return read_regular(path, limit=limit + 1)
        with open(path, "rb") as fh:
            return fh.read(limit + 1)
    except NotRegularFile as exc:
        raise StackError(Problem(f"{display} is {exc.kind}, not a spec file")) from None
    except TooLarge:
        raise StackError(Problem(f"{display} is larger than {limit // 1024} KiB; a stack spec is a small text file", file=display)) from None
    except FileNotFoundError:
        raise StackError(Problem(f"no such spec file: {display}", hint="create one with 'stackgen init'")) from None
    except IsADirectoryError:
        raise StackError(Problem(f"{display} is a directory, not a spec file")) from None
    except OSError as exc:
        raise StackError(Problem(f"cannot read {display}: {exc.strerror or exc}")) from None
