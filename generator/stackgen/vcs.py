"""Nix flakes see only what git knows: rendered into a git work tree, the files that Nix reads
must be `git add`ed before `nix develop` or `nix flake check` can use them (otherwise:
"getting status of '/nix/store/…-source/flake.nix': No such file or directory")."""

from __future__ import annotations

import os
from pathlib import Path

GIT_TIMEOUT = 10  # seconds; a hung git (a network file system) must not hang a render


def work_tree(folder: Path) -> bool:
    """Whether `folder` is inside a git work tree (a `.git` folder or file above it)."""
    here = Path(os.path.abspath(folder))
    for candidate in (here, *here.parents):
        if os.path.lexists(candidate / ".git"):
            return True
    return False


def untracked(folder: Path, paths: list[str]) -> list[str] | None:
    """Those of `paths` (relative to `folder`) that git's index does not hold, ignored ones
    included (a flake cannot see those either); None when git cannot tell."""
    if not paths:
        return []
    import subprocess  # only for a tree inside git: a render elsewhere never loads it

    try:
        proc = subprocess.run(
            # The tree's own git config is data: core.fsmonitor there would run a command.
            ["git", "-c", "core.fsmonitor=false", "-C", str(folder), "ls-files", "-z", "--others", "--", *paths],
            capture_output=True, timeout=GIT_TIMEOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    listed = {p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p}
    return [p for p in paths if p in listed]
