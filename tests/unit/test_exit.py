"""How a stackgen process ends (cli._leave): without tearing the interpreter down, but with
everything an exit owes the outside world done first: output flushed, the exit status kept,
atexit callbacks and other threads honoured (then Python exits as usual)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

REFERENCE = ROOT / "examples" / "ai-stack.yaml"

# A child that runs stackgen's entry point with an object whose __del__ says so when the
# interpreter is torn down; PRELUDE may register an atexit callback or start a thread.
CHILD = """
import sys
PRELUDE
class Witness:
    def __del__(self):
        sys.__stderr__.write("torn down\\n")
import stackgen.cli
stackgen.cli.witness = Witness()
sys.argv = ["stackgen", *sys.argv[1:]]
stackgen.cli.run()
"""


def child(*args: str, prelude: str = "", **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", "stdout" not in kw)
    kw["env"] = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as usual
    return subprocess.run([sys.executable, "-c", CHILD.replace("PRELUDE", prelude), *args], text=True, **kw)


def test_a_render_ends_without_teardown_and_with_all_its_output(tmp_path):
    out = tmp_path / "out"
    proc = child("render", str(REFERENCE), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "torn down" not in proc.stderr  # the interpreter was not torn down...
    listed = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("  create")]
    assert len(listed) == 30 and "30 written" in proc.stdout  # ...and the piped stdout is all there
    assert sorted(listed) == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and ".stackgen" not in p.parts)
    assert "end of life" in proc.stderr  # the spec's warning, flushed too


def test_the_control_sees_teardown():
    """The probe works: with an atexit callback registered, Python's own exit runs (the
    callback, then the teardown the witness reports)."""
    proc = child("--version", prelude="import atexit; atexit.register(lambda: sys.__stderr__.write('atexit ran\\n'))")
    assert proc.returncode == 0 and "stackgen" in proc.stdout
    assert proc.stderr.splitlines() == ["atexit ran", "torn down"]


def test_exit_statuses_are_kept(tmp_path):
    bad = tmp_path / "stack.yaml"
    bad.write_text("version: 1\nname: demo\nservices: {nope: {}}\n")
    spec_error = child("validate", str(bad))
    assert spec_error.returncode == 1 and "torn down" not in spec_error.stderr and "nope" in spec_error.stderr
    usage = child("render", "--no-such-option")
    assert usage.returncode == 2 and "torn down" not in usage.stderr and "No such option" in usage.stderr
    ok = child("validate", str(REFERENCE))
    assert ok.returncode == 0 and "torn down" not in ok.stderr


def test_a_second_thread_is_waited_for(tmp_path):
    """A live non-daemon thread gets Python's own exit, which waits for it."""
    mark = tmp_path / "mark"
    prelude = (
        "import threading, time\n"
        f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(mark)!r}, 'w').write('done'))).start()\n"
    )
    proc = child("--version", prelude=prelude)
    assert proc.returncode == 0, proc.stderr
    assert mark.read_text() == "done"
    assert "torn down" in proc.stderr


def test_a_failed_flush_is_reported_as_python_does(tmp_path):
    """Output still buffered at the end (click's echo flushes, but not every writer does) to a
    reader that has gone: the flush fails, and Python's own exit reports it with status 120, as
    it did before the fast exit; the output is never silently lost with status 0."""
    bad = tmp_path / "stack.yaml"
    bad.write_text("version: 1\nname: demo\nservices: {nope: {}}\n")  # an error on stderr, nothing on stdout
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = child("validate", str(bad), prelude="sys.stdout.write('pending')", stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    assert proc.returncode == 120, proc.stderr
    assert "nope" in proc.stderr and "BrokenPipeError" in proc.stderr and "torn down" in proc.stderr


def test_help_on_a_full_device_is_an_error_not_a_traceback():
    with open("/dev/full", "w") as full:
        proc = child("--help", stdout=full, stderr=subprocess.PIPE)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "error: No space left on device\n"


def test_a_render_runs_few_collections(tmp_path):
    """cli.run raises the young generation's threshold (cli.YOUNG): the reference render runs
    at most a couple of collections. The control keeps Python's default (set_threshold made a
    no-op) and sees many: the count depends on the threshold, so this test can fail."""
    counting = (
        "import atexit, gc\n"
        "runs = []\n"
        "gc.callbacks.append(lambda phase, info: phase == 'stop' and runs.append(info['generation']))\n"
        "atexit.register(lambda: sys.__stderr__.write(f'collections={len(runs)}\\n'))\n"
        "freeze = gc.freeze\n"
        "gc.freeze = lambda: (runs.clear(), freeze())  # counted from run()'s start: imports before it are not the command's\n"
    )

    def collections(prelude: str, out: str) -> int:
        proc = child("render", str(REFERENCE), "-o", str(tmp_path / out), prelude=counting + prelude)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stderr.rsplit("collections=", 1)[1].split()[0])

    assert collections("", "raised") <= 2
    assert collections("gc.set_threshold = lambda *a: None\n", "default") >= 10


def test_main_called_by_another_program_ends_with_systemexit(tmp_path):
    """Another Python program calling stackgen.cli.main() gets SystemExit back (its own
    buffered files and handlers still run); only run(), the process's entry point, ends the
    process itself. Without atexit callbacks in the host, so the fast exit would be taken if
    main() used it."""
    log = tmp_path / "host.log"
    host = (
        "import sys\n"
        f"log = open({str(log)!r}, 'w'); log.write('before\\n')\n"
        "sys.argv = ['stackgen', '--version']\n"
        "try:\n"
        "    from stackgen.cli import main; main()\n"
        "except SystemExit as exc:\n"
        "    log.write(f'exited {exc.code}\\n')\n"
        "log.close()\n"
    )
    proc = subprocess.run([sys.executable, "-c", host], capture_output=True, text=True)
    assert proc.returncode == 0 and "stackgen" in proc.stdout, proc.stderr
    assert log.read_text() == "before\nexited 0\n"


def test_the_entry_points_are_run():
    import tomllib

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["stackgen"] == "stackgen.cli:run"
    assert (ROOT / "generator" / "stackgen" / "__main__.py").read_text() == "from .cli import run\n\nrun()\n"
