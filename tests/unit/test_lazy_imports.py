"""`import stackgen.cli` (what every command pays) loads none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "httpcore", "pynvml", "tomlkit")


def test_cli_import_is_light():
    code = "import sys, stackgen.cli; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert "stackgen" in loaded
    assert loaded.isdisjoint(HEAVY), f"imported at startup: {sorted(loaded & set(HEAVY))}"
