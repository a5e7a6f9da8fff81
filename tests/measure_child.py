"""Run `python -m stackgen ARGS` and report its peak resident memory, measured apart from pytest.

A child forked from the test process starts out in that process's address space, and Linux
keeps the larger of the two peaks (wait4's ru_maxrss) across exec: a pytest grown to 500 MiB
made every child look 500 MiB big. This small process is the one that forks, so the peak it
reports is stackgen's own. Usage: measure_child.py REPORT_PATH ARGS...; stdout and stderr
pass through; REPORT_PATH receives "<exit code> <peak KiB>".
"""

import os
import resource
import subprocess
import sys


def cap() -> None:
    # a reader that does not bound what it reads fails fast instead of filling the machine
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def main() -> None:
    report, args = sys.argv[1], sys.argv[2:]
    proc = subprocess.Popen([sys.executable, "-m", "stackgen", *args], stdin=subprocess.DEVNULL, preexec_fn=cap)
    _, status, usage = os.wait4(proc.pid, 0)
    with open(report, "w") as fh:
        fh.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}\n")


if __name__ == "__main__":
    main()
