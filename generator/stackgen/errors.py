"""User-facing errors.

Every problem a user can cause (a bad spec, a drifted file, a refused overwrite) is a
`Problem`; a `StackError` carries one or more of them and is turned into exit code 1 by the
CLI. Nothing else should ever reach the user as a traceback.
"""

from __future__ import annotations

from .records import dataclass  # as dataclasses', without exec() or importing dataclasses
from typing import Iterable, Sequence

MAX_SHOWN_PROBLEMS = 100  # a broken 1 MiB spec can have 100,000 errors; the first 100 say enough
MAX_LINE = 160  # quoted source lines longer than this are shown as a window around the column
MAX_TEXT = 300  # a message or hint longer than this is cut (it quotes a huge value)


def printable(text: str, *, keep_tabs: bool = False) -> str:
    """`text` with every non-printable character (controls, bidi overrides, lone surrogates)
    written as a Python escape, so a hostile spec cannot drive the user's terminal."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or (keep_tabs and ch == "\t") else repr(ch)[1:-1]
        for ch in text
    )


def shown(value: str, limit: int = 80) -> str:
    """A short, printable rendering of a user value for a message: 'abc' or 'abc…' (N chars)."""
    text = printable(value[: limit + 1])  # escaping only lengthens: the cut is the same, and cheap
    if len(text) > limit:
        return f"{text[:limit]}… ({len(value)} characters)"
    return text


MAX_PEER_TEXT = 200


def peer_text(value: str, limit: int = MAX_PEER_TEXT) -> str:
    """What a network peer (or a program we ran) said, safe to print: every control character
    (C0 with tab and newline, which would forge table rows, DEL, C1), bidi override and other
    non-printable character escaped, and cut to `limit` characters. Every print of peer text
    goes through here, so an OSC 52 or clear-screen sequence is shown, never obeyed."""
    return shown(value, limit)


def _clip(text: str) -> str:
    text = printable(text)
    if len(text) > MAX_TEXT:
        return text[:MAX_TEXT] + f"… ({len(text) - MAX_TEXT} more characters)"
    return text


def _window(line: str, col: int | None) -> tuple[str, int | None]:
    """A quoted source line cut to MAX_LINE characters around `col`; returns (text, new col)."""
    raw = line.rstrip("\r\n")
    line = printable(raw, keep_tabs=True)
    if col is not None and line != raw:  # escapes before the column move the caret
        col = len(printable(raw[: col - 1], keep_tabs=True)) + 1
    if col is not None:
        col = min(col, len(line) + 1)
    if len(line) <= MAX_LINE:
        return line, col
    start = 0 if col is None else max(0, min(col - 1 - MAX_LINE // 2, len(line) - MAX_LINE))
    text = line[start : start + MAX_LINE]
    prefix = "…" if start else ""
    suffix = "…" if start + MAX_LINE < len(line) else ""
    return prefix + text + suffix, None if col is None else col - start + len(prefix)


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    source_line: str | None = None
    hint: str | None = None
    level: str = "error"  # or "warning": printed the same way, and stops nothing

    def format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        out = [f"{printable(where)}{self.level}: {_clip(self.message)}"]
        if self.source_line is not None and self.line is not None:
            gutter = f"{self.line:>5} | "
            text, col = _window(self.source_line, self.col)
            out.append(gutter + text)
            if col is not None:
                out.append(" " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^")
        if self.hint:
            out.append(f"  hint: {_clip(self.hint)}")
        return "\n".join(out)


class StackError(Exception):
    """One or more user errors; the CLI prints them all and exits 1."""

    def __init__(self, problems: Problem | Sequence[Problem]):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.format())

    def format(self) -> str:
        body = "\n".join(p.format() for p in self.problems[:MAX_SHOWN_PROBLEMS])
        if len(self.problems) > MAX_SHOWN_PROBLEMS:
            body += f"\n{len(self.problems)} errors (the first {MAX_SHOWN_PROBLEMS} are shown)"
        elif len(self.problems) > 1:
            body += f"\n{len(self.problems)} errors"
        return body


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for `word`, or None when nothing is close."""
    import difflib  # only when there is an error to explain

    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return None


def one_of(choices: Iterable[str]) -> str:
    return "one of: " + ", ".join(repr(c) if not isinstance(c, str) else c for c in choices)
