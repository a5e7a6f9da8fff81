"""Escaping for every output language. Templates call these as filters; they never quote by hand."""

from __future__ import annotations

import re
from typing import Iterable

_NIX_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NIX_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
_NIX_KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}


def nix_str(value: object) -> str:
    """A Nix double-quoted string literal that evaluates to exactly `value`.

    Every `$` is escaped (so neither `${` nor `$${` can start an interpolation), as are
    backslashes, quotes and the whitespace escapes Nix knows.
    """
    text = str(value)
    return '"' + "".join(_NIX_ESCAPES.get(ch, ch) for ch in text) + '"'


def nix_attr(name: str) -> str:
    """An attribute name: bare where Nix allows it, else quoted."""
    if _NIX_ID.fullmatch(name) and name not in _NIX_KEYWORDS:
        return name
    return nix_str(name)


def nix_list(values: Iterable[object]) -> str:
    """A one-line list of string literals: [ "a" "b" ]."""
    items = [nix_str(v) for v in values]
    return "[ " + " ".join(items) + " ]" if items else "[ ]"


def nix_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[ " + " ".join(nix_value(v) for v in value) + " ]" if value else "[ ]"
    return nix_str(value)


def sh_quote(value: object) -> str:
    """A POSIX shell word that expands to exactly `value` (single quotes, ' as '\\'')."""
    text = str(value)
    if text and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def systemd_exec(args: Iterable[object]) -> str:
    """A systemd/Quadlet command line (Exec=) whose words are exactly `args`.

    `%` starts a systemd specifier, so it is doubled; a word with whitespace, quotes or
    backslashes is double-quoted with C-style escapes.
    """
    words = []
    for arg in args:
        text = str(arg).replace("%", "%%")
        if not text or re.search(r"[\s\"'\\;]", text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
        words.append(text)
    return " ".join(words)
