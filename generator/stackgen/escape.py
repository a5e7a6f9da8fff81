"""Escaping for every output language. Templates call these as filters; they never quote by hand."""

from __future__ import annotations

from typing import Iterable

from .charset import Word

_NIX_ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NIX_TABLE = str.maketrans(_NIX_ESCAPES)  # str.translate: the same mapping, in C
NIX_ID = Word(r"[A-Za-z_][A-Za-z0-9_'-]*")  # a bare attribute name
_SH_SAFE = Word(r"[A-Za-z0-9_@%+=:,./-]+")  # a shell word that needs no quotes
_SYSTEMD_SAFE = Word(r"[A-Za-z0-9_@+=:,./-]+")  # the same without %, which starts a unit specifier
_DQUOTE_TABLE = str.maketrans({ch: "\\" + ch for ch in '\\"$`'})  # re.sub(r'([\\"$`])', r"\\\1", text), in C
_NIX_KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}


def nix_str(value: object) -> str:
    """A Nix double-quoted string literal that evaluates to exactly `value`.

    Every `$` is escaped (so neither `${` nor `$${` can start an interpolation), as are
    backslashes, quotes and the whitespace escapes Nix knows.
    """
    text = str(value)
    return '"' + text.translate(_NIX_TABLE) + '"'


def nix_attr(name: str) -> str:
    """An attribute name: bare where Nix allows it, else quoted."""
    if NIX_ID.fullmatch(name) and name not in _NIX_KEYWORDS:
        return name
    return nix_str(name)


def nix_list(values: Iterable[object]) -> str:
    """A one-line list of string literals: [ "a" "b" ]."""
    items = [nix_str(v) for v in values]
    return "[ " + " ".join(items) + " ]" if items else "[ ]"


def nix_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        # Nix has no negative literals: `f -1` is `f - 1`, so a negative number is parenthesized.
        text = nix_float(value) if isinstance(value, float) else str(value)
        return f"({text})" if text.startswith("-") else text
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[ " + " ".join(nix_value(v) for v in value) + " ]" if value else "[ ]"
    return nix_str(value)


def nix_float(value: float) -> str:
    """A Nix float literal: Nix needs a '.' before any exponent (1.0e-05, not 1e-05) and has
    no literal for inf or nan (validation refuses them)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"no Nix literal for {value!r}")
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent


def sh_quote(value: object) -> str:
    """A POSIX shell word that expands to exactly `value` (single quotes, ' as '\\'')."""
    text = str(value)
    if _SH_SAFE.fullmatch(text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def sh_dquoted(value: object) -> str:
    """The inside of a POSIX double-quoted string that expands to exactly `value`.

    For sinks that wrap a value in double quotes themselves, such as home-manager's
    `home.sessionVariables` (`export NAME="value"` in hm-session-vars.sh): `\\`, `"`, `$` and
    the backquote are the only characters special there; each gets a backslash.
    """
    text = str(value)
    if "\x00" in text:
        raise ValueError("a shell string cannot hold NUL")
    return text.translate(_DQUOTE_TABLE)


def compose_str(value: object) -> str:
    """A compose-file string that reaches the container as exactly `value`.

    Compose interpolates `$VAR` and `${VAR}` in every string of the file; `$$` is a literal `$`.
    (YAML quoting itself is left to the YAML dumper.)
    """
    return str(value).replace("$", "$$")


def _systemd_checked(value: object) -> str:
    text = str(value)
    if "\n" in text or "\r" in text or "\x00" in text:
        raise ValueError(f"a unit file value cannot hold a line break or NUL: {text!r}")
    return text


def systemd_specifiers(value: object) -> str:
    """A unit-file value used whole, in a key systemd reads at load time but never runs
    (Description=, Requires=, After=, WantedBy=...): `%` starts a specifier, `%%` is a `%`.

    Refused: what the unit parser would change. It strips whitespace at both ends and reads a
    trailing backslash as a line continuation; Quadlet's own lookup also strips `"` at both ends.
    """
    text = _systemd_checked(value)
    if text != text.strip() or text.endswith("\\") or text.startswith('"') or text.endswith('"'):
        raise ValueError(f"not representable as a unit value: {text!r}")
    return text.replace("%", "%%")


def systemd_raw(value: object) -> str:
    """A Quadlet value used whole (Image=, PublishPort=, Volume=, HealthCmd=, NetworkName=...).

    Quadlet copies these into the ExecStart= of the service it generates, where systemd
    resolves `%` specifiers and expands `$` variables; `%%` and `$$` are their literal forms.
    """
    return systemd_specifiers(value).replace("$", "$$")


def systemd_percent(value: object) -> str:
    """A value that NixOS copies into a unit setting without escaping `%` (the Environment=
    lines of `systemd.services.<n>.environment`, JSON-quoted; a host spliced into ExecStart=):
    `%` starts a specifier there and `%%` is a literal `%`. Line breaks are refused."""
    return _systemd_checked(value).replace("%", "%%")


def systemd_word(value: object) -> str:
    """One word of a word-split unit value (Environment=, Exec=): bare when that is safe,
    else double-quoted with C-style escapes."""
    text = _systemd_checked(value)
    if _SYSTEMD_SAFE.fullmatch(text):
        return text
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{text}"'


def systemd_words(values: Iterable[object]) -> str:
    return " ".join(systemd_word(v) for v in values)


def hm_quadlet_env(value: object) -> str:
    """A value of home-manager's `services.podman.containers.<name>.environment`.

    home-manager writes `Environment=NAME=value` into the Quadlet unit, quoting it only when it
    holds whitespace, and Quadlet hands it on to ExecStart=, where systemd expands `%` and `$`:
    those are doubled. Whitespace, quotes and backslashes, which the two quoting layers would
    change, are refused (spec validation keeps them out of every value that gets here).
    """
    text = _systemd_checked(value)
    if any(ch.isspace() or ch in "\"'\\" for ch in text):  # re's [\s"'\\]: \s is str.isspace
        raise ValueError(f"not representable as a home-manager container environment value: {text!r}")
    return text.replace("%", "%%").replace("$", "$$")
