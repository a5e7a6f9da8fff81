"""Test-only: slows the file operations of a `stackgen render` child process and tells the
parent when they begin, so that a SIGKILL sent at a random moment lands inside its writes.

It is on PYTHONPATH only in tests/e2e/test_kill.py; production code has no hook for it.
STACKGEN_TEST_SLOW_IO: seconds added before each os.fsync, os.replace and os.unlink.
STACKGEN_TEST_WRITE_FD: a pipe to write one byte to at the first of those calls.
"""

import os
import time

_delay = float(os.environ.get("STACKGEN_TEST_SLOW_IO") or 0)
_fd = os.environ.get("STACKGEN_TEST_WRITE_FD")

if _delay > 0 or _fd:

    def _slow(original):
        def wrapper(*args, **kwargs):
            global _fd
            if _fd:
                os.write(int(_fd), b"w")
                _fd = None
            time.sleep(_delay)
            return original(*args, **kwargs)

        return wrapper

    os.fsync = _slow(os.fsync)
    os.replace = _slow(os.replace)
    os.unlink = _slow(os.unlink)
