"""Patterns of the simplest shape, matched without compiling a regular expression.

Most names a spec holds are checked against one shape of pattern: a first character from one
set, then characters from another, up to a length (`[a-z][a-z0-9-]{0,62}`). Python's re
compiles each such pattern at its first use, about 0.1 ms apiece, and a render met a dozen
of them; `Word` matches exactly the same strings with str methods (no compiling, and faster
per match). A Word is made from its pattern alone (the pattern is the one statement of what
it accepts), and tests/unit/test_fast_paths.py holds every one of them to re's reading of it.
"""

from __future__ import annotations

class Word:
    """`re.fullmatch(pattern, text) is not None` for a pattern of the shape `[F][R]*`,
    `[F][R]{0,n}` or `[S]+`, where each class lists characters and ranges (`a-z`, a `-` last
    is itself); any other pattern is refused with ValueError when the Word is made."""

    __slots__ = ("pattern", "first", "rest", "max_len")

    def __init__(self, pattern: str):
        self.pattern = pattern
        self.first, self.rest, max_rest = _shape(pattern)
        self.max_len = None if max_rest is None else max_rest + 1

    def fullmatch(self, text: str) -> bool:
        if not text or (self.max_len is not None and len(text) > self.max_len):
            return False
        # text[0] is one character, so `in` tests membership; strip() leaves nothing exactly
        # when every other character is one of `rest`
        return text[0] in self.first and not text[1:].strip(self.rest)

    def __repr__(self) -> str:
        return f"Word({self.pattern!r})"


def _shape(pattern: str) -> tuple[str, str, int | None]:
    """(first characters, rest characters, most rest characters or None) of a Word's pattern."""
    sets, i = [], 0
    while pattern.startswith("[", i):
        end = pattern.index("]", i + 1)
        sets.append(_members(pattern[i + 1 : end], pattern))
        i = end + 1
    tail = pattern[i:]
    if len(sets) == 1 and tail == "+":
        return sets[0], sets[0], None
    if len(sets) == 2 and tail == "*":
        return sets[0], sets[1], None
    if len(sets) == 2 and tail.startswith("{0,") and tail.endswith("}") and tail[3:-1].isdigit():
        return sets[0], sets[1], int(tail[3:-1])
    raise ValueError(f"not a pattern of Word's shape: {pattern!r}")


def _members(body: str, pattern: str) -> str:
    """The characters a class lists: single characters and ranges, nothing else."""
    if not body or body[0] == "^" or "\\" in body or "[" in body or not body.isascii():
        raise ValueError(f"not a class of Word's shape in {pattern!r}: [{body}]")
    out, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            out += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)]
            i += 3
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def decimal(text: str) -> bool:
    """`[-+]?(0|[1-9][0-9]*)`: an integer as plain decimal digits (no leading zero)."""
    body = text[1:] if text[:1] in ("-", "+") else text
    return body.isascii() and body.isdigit() and (body == "0" or body[0] != "0")
