"""Patterns of the simplest shape, matched without compiling a regular expression.

Most names a spec holds are checked against one shape of pattern: a first character from one
set, then characters from another, up to a length (`[a-z][a-z0-9-]{0,62}`). Python's re
compiles each such pattern at its first use, about 0.1 ms apiece, and a render met a dozen
of them; `Word` matches exactly the same strings with str methods (no compiling, and faster
per match). Each Word keeps the pattern it stands for, and tests/unit/test_fast_paths.py
holds every one of them to that pattern.
"""

from __future__ import annotations

LOWER = "abcdefghijklmnopqrstuvwxyz"
UPPER = LOWER.upper()
DIGITS = "0123456789"


class Word:
    """`re.fullmatch(pattern, text) is not None` for a pattern `[first][rest]{0,max_rest}`
    (`max_rest` None: `*`); sets of ASCII characters only, as written in the pattern."""

    __slots__ = ("pattern", "first", "rest", "max_len")

    def __init__(self, pattern: str, first: str, rest: str, max_rest: int | None = None):
        self.pattern = pattern
        self.first = first
        self.rest = rest
        self.max_len = None if max_rest is None else max_rest + 1

    def fullmatch(self, text: str) -> bool:
        if not text or (self.max_len is not None and len(text) > self.max_len):
            return False
        # text[0] is one character, so `in` tests membership; strip() leaves nothing exactly
        # when every other character is one of `rest`
        return text[0] in self.first and not text[1:].strip(self.rest)

    def __repr__(self) -> str:
        return f"Word({self.pattern!r})"


def decimal(text: str) -> bool:
    """`[-+]?(0|[1-9][0-9]*)`: an integer as plain decimal digits (no leading zero)."""
    body = text[1:] if text[:1] in ("-", "+") else text
    return body.isascii() and body.isdigit() and (body == "0" or body[0] != "0")
