"""User-facing errors.

Every problem a user can cause (a bad spec, a drifted file, a refused overwrite) is a
`Problem`; a `StackError` carries one or more of them and is turned into exit code 1 by the
CLI. Nothing else should ever reach the user as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    source_line: str | None = None
    hint: str | None = None

    def format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        out = [f"{where}error: {self.message}"]
        if self.source_line is not None and self.line is not None:
            gutter = f"{self.line:>5} | "
            out.append(gutter + self.source_line.rstrip("\r\n"))
            if self.col is not None:
                out.append(" " * (len(gutter) - 2) + "| " + " " * (self.col - 1) + "^")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


class StackError(Exception):
    """One or more user errors; the CLI prints them all and exits 1."""

    def __init__(self, problems: Problem | Sequence[Problem]):
        if isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.format())

    def format(self) -> str:
        body = "\n".join(p.format() for p in self.problems)
        if len(self.problems) > 1:
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
