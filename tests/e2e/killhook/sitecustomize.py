"""Test-only: slows the file operations of a `stackgen render` child process and tells the
parent when they begin, so that a SIGKILL sent at a random moment lands inside its writes;
or kills the child itself at exactly its Nth file operation.

It is on PYTHONPATH only in tests/e2e/test_kill.py; production code has no hook for it.
STACKGEN_TEST_SLOW_IO: seconds added before each os.fsync, os.replace, os.link and os.unlink.
STACKGEN_TEST_WRITE_FD: a pipe to write one byte to at the first of those calls.
STACKGEN_TEST_DIE_AT: N: the process ends at once (os._exit, like SIGKILL: no cleanup runs)
  just before its Nth such call. STACKGEN_TEST_COUNT_FD: a pipe that gets one byte per call,
  so the parent learns how many calls a whole render makes.
"""

import os
import time

_delay = float(os.environ.get("STACKGEN_TEST_SLOW_IO") or 0)
_fd = os.environ.get("STACKGEN_TEST_WRITE_FD")
_die_at = int(os.environ.get("STACKGEN_TEST_DIE_AT") or 0)
_count_fd = os.environ.get("STACKGEN_TEST_COUNT_FD")
_calls = 0

if _delay > 0 or _fd or _die_at or _count_fd:

    def _slow(original):
        def wrapper(*args, **kwargs):
            global _fd, _calls
            _calls += 1
            if _calls == _die_at:
                os._exit(137)
            if _count_fd:
                os.write(int(_count_fd), b"c")
            if _fd:
                os.write(int(_fd), b"w")
                _fd = None
            time.sleep(_delay)
            return original(*args, **kwargs)

        return wrapper

    os.fsync = _slow(os.fsync)
    os.replace = _slow(os.replace)
    os.link = _slow(os.link)
    os.unlink = _slow(os.unlink)
