"""Where stackgen writes in an output tree: the only places a state file may name.

A state file is data in the user's tree; a hostile one could list `.git/HEAD` or the spec
itself with the hash of its known contents, and a full render would then remove it as a file
stackgen no longer renders. Every path of every target lies under one of these roots (a test
renders every golden case and checks it), and the writer refuses a state entry elsewhere.
"""

from __future__ import annotations

# top-level files, and folders (with a trailing slash) whose whole content stackgen renders
OUTPUT_ROOTS = (
    "flake.nix",
    "compose.yaml",
    "process-compose.yaml",
    "nix/",
    "env/",
    "compose/",
    "quadlet/",
    "k8s/",
    "hosts/",
)


def is_output(rel: str) -> bool:
    return any(rel == root or (root.endswith("/") and rel.startswith(root)) for root in OUTPUT_ROOTS)


# Files stackgen writes once, as a starting point, and then leaves to the user: a render
# creates one that is missing, and neither overwrites nor reports (not even --check) one
# that the user has changed; from then on it is the user's, and the state forgets it.
# (hosts/<host>/hardware.nix: the machine's file systems and boot loader, which only the
# machine knows.)
def user_owned(rel: str) -> bool:
    parts = rel.split("/")
    return len(parts) == 3 and parts[0] == "hosts" and parts[2] == "hardware.nix"
