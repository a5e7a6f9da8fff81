"""Import discipline: the CLI starts fast because heavy modules load only where they are used."""

from __future__ import annotations

import subprocess
import sys

from conftest import EXAMPLES

NEVER_AT_START = {"httpx", "pynvml", "tomlkit"}


def imported_by(code: str) -> set[str]:
    """Top-level packages imported by `python -X importtime -c code` (importtime's own list)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "imported package" not in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "stackgen" in names, proc.stderr[-2000:]  # the parse worked
    return names


def test_importing_the_cli_loads_no_heavy_module():
    names = imported_by("import stackgen.cli")
    assert not names & NEVER_AT_START
    assert "jinja2" not in names and "yaml" not in names


def test_help_and_validate_do_not_load_jinja2():
    code = (
        "import sys\n"
        "from stackgen.cli import cli\n"
        "for args in (['--help'], ['validate', %r]):\n"
        "    try:\n"
        "        cli(args, prog_name='stackgen')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
    ) % str(EXAMPLES / "ai-stack.yaml")
    names = imported_by(code)
    assert "yaml" in names  # validate ran
    assert not names & (NEVER_AT_START | {"jinja2"})


def test_render_loads_no_network_or_nvml_module(tmp_path):
    code = (
        "from stackgen.cli import cli\n"
        "try:\n"
        "    cli(['render', %r, '-o', %r], prog_name='stackgen')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    ) % (str(EXAMPLES / "ai-stack.yaml"), str(tmp_path / "out"))
    names = imported_by(code)
    assert (tmp_path / "out" / "flake.nix").exists()
    assert not names & NEVER_AT_START


def test_render_does_not_import_the_host_commands(tmp_path):
    """detect, status, models ... are loaded only when they run (or --help lists them)."""
    code = (
        "import sys\n"
        "from stackgen.cli import cli\n"
        "try:\n"
        "    cli(['render', %r, '-o', %r], prog_name='stackgen')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('stackgen.commands'))\n"
        "assert not loaded, loaded\n"
    ) % (str(EXAMPLES / "ai-stack.yaml"), str(tmp_path / "out"))
    subprocess.run([sys.executable, "-c", code], check=True)


def test_render_outside_git_loads_no_subprocess_or_secrets(tmp_path):
    """Issue 11 (speed): `subprocess` (with signal, selectors) is needed only to ask git about
    a tree inside a work tree, and temp names need os.urandom, not `secrets` (with hmac)."""
    from stackgen import vcs

    assert not vcs.work_tree(tmp_path), f"{tmp_path} must lie outside any git work tree for this test"
    code = (
        "import sys\n"
        "from stackgen.cli import cli\n"
        "try:\n"
        "    cli(['render', %r, '-o', %r], prog_name='stackgen')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(' '.join(sorted(sys.modules)))\n"
    ) % (str(EXAMPLES / "ai-stack.yaml"), str(tmp_path / "out"))
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert (tmp_path / "out" / "flake.nix").exists()
    assert "stackgen.write" in loaded  # the render ran in that process
    assert not loaded & {"subprocess", "secrets"}, sorted(loaded & {"subprocess", "secrets"})
