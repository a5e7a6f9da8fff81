"""Small value checkers for the spec schema.

Each checker takes the `Collector`, the value's path and the value, and returns the
normalized value or `INVALID` after recording a located problem. The collector keeps going,
so every error of a spec is reported at once.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable

from ..charset import Word, decimal
from ..errors import Problem, did_you_mean, shown
from ..records import replace
from .loader import Document

INVALID = object()
YAML11_BOOLS = {"y", "yes", "n", "no", "on", "off", "true", "false"}
NIX_KEYWORDS = {"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"}
# C0 and C1 controls (not \t \n), DEL, Unicode line separators, bidi overrides and isolates
# ("Trojan Source": text that displays in another order than it reads), lone surrogates.
_PATTERNS = {
    "CONTROL": "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]",
    "BIDI": "[\u202a-\u202e\u2066-\u2069]",
}

Checker = Callable[["Collector", tuple, Any], Any]


class Collector:
    def __init__(self, doc: Document):
        self.doc = doc
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, path: tuple, message: str, hint: str | None = None, *, at_key: bool = False) -> object:
        self.problems.append(self.doc.problem(path, message, hint, at_key=at_key))
        return INVALID

    def warning(self, path: tuple, message: str, hint: str | None = None) -> None:
        """Something the user should know that stops nothing (the CLI prints it to stderr)."""
        self.warnings.append(replace(self.doc.problem(path, message, hint), level="warning"))

    def raw(self, path: tuple) -> str | None:
        return self.doc.scalars.get(path)


def dotted(path: Iterable) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "the spec"


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"  # dates and timestamps


def _quote_hint(c: Collector, path: tuple, value: Any) -> str | None:
    raw = c.raw(path)
    if raw is None:
        return None
    if isinstance(value, bool) and raw.lower() in YAML11_BOOLS:
        return f"YAML reads {raw} as a boolean; write \"{raw}\" to keep the text"
    if isinstance(value, float):
        return f"YAML reads {raw} as the number {value!r}; write \"{raw}\" to keep the text"
    if isinstance(value, (int, float)) or value is None or not isinstance(value, (list, dict)):
        return f"write \"{raw}\" to make it a string"
    return None


def string(
    *,
    pattern: str | Word | None = None,
    describe: str | None = None,
    max_len: int = 4096,
    allow_newlines: bool = False,
    coerce_int: bool = False,
) -> Checker:
    # a str is compiled (and cached by `re`) at the first value it checks: a spec meets few of them
    matches = pattern.fullmatch if isinstance(pattern, Word) else (lambda text: re.fullmatch(pattern, text))

    def check(c: Collector, path: tuple, value: Any) -> Any:
        if coerce_int:
            value = _as_text(c, path, value)
            if value is INVALID:
                return value
        if not isinstance(value, str):
            return c.error(path, f"{dotted(path)} must be a string, not {kind_of(value)}", _quote_hint(c, path, value))
        if len(value) > max_len:
            return c.error(path, f"{dotted(path)} is longer than {max_len} characters")
        bad = control_char(value)
        if bad:
            ch = bad.group()
            what = "a lone surrogate" if "\ud800" <= ch <= "\udfff" else "the bidirectional-text control" if re.match(_PATTERNS["BIDI"], ch) else "the control character"
            return c.error(path, f"{dotted(path)} contains {what} {ch!r}")
        if not allow_newlines and ("\n" in value or "\t" in value):
            return c.error(path, f"{dotted(path)} must be a single line")
        if pattern and not matches(value):
            return c.error(path, f"{dotted(path)} {value!r} is not {describe or 'valid'}")
        return value

    return check


def control_char(text: str) -> re.Match | None:
    """The first character of CONTROL in `text`, if any. Printable ASCII (most of a spec) holds
    none, which is checked without compiling CONTROL: its Unicode ranges make it the costliest
    pattern to compile in a render."""
    if text.isascii() and text.isprintable():
        return None
    return re.search(_PATTERNS["CONTROL"], text)


def __getattr__(name: str) -> re.Pattern:
    """CONTROL and BIDI as compiled patterns (for other modules), compiled at the first use:
    CONTROL's Unicode ranges make it the costliest pattern of a render to compile."""
    if name not in _PATTERNS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    pattern = globals()[name] = re.compile(_PATTERNS[name])
    return pattern


def _as_text(c: Collector, path: tuple, value: Any) -> Any:
    """An integer written where text is expected, as the text written: `1234` is "1234", but
    `0755` (octal 493 in YAML 1.1), `1:30` (base 60: 90), `0x1F` and `1_000` are errors."""
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    raw = c.raw(path)
    if raw is not None and raw != str(value):
        return c.error(
            path,
            f"{dotted(path)} is written {raw}, which YAML reads as the number {value}",
            f'write "{raw}" to keep the text',
        )
    return str(value)


def boolean(c: Collector, path: tuple, value: Any) -> Any:
    if not isinstance(value, bool):
        return c.error(path, f"{dotted(path)} must be true or false, not {kind_of(value)}")
    raw = c.raw(path)
    if raw is not None and raw.lower() not in ("true", "false"):
        return c.error(
            path,
            f"{dotted(path)} is written '{raw}'; write true or false",
            "YAML 1.1 reads yes/no/on/off as booleans, other YAML readers do not",
        )
    return value


def integer(lo: int, hi: int, what: str = "") -> Checker:
    def check(c: Collector, path: tuple, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            hint = None
            raw = c.raw(path) or ""
            if isinstance(value, str) and value.strip().isdigit():
                quoted = raw[:1] in ("'", '"')
                hint = f"write {value.strip()} without quotes" if quoted else f"write {int(value)} without leading zeros"
            return c.error(path, f"{dotted(path)} must be an integer{what}, not {kind_of(value)}", hint)
        raw = c.raw(path)
        if raw is not None and not decimal(raw):
            # YAML 1.1 reads 0755 as octal, 1:30 as base 60, 0x1F as hex, 1_000 with its '_'
            return c.error(
                path,
                f"{dotted(path)} is written {raw}, which YAML reads as {value}",
                "write it in plain decimal digits, without a leading 0, '0x', ':' or '_'",
            )
        if not lo <= value <= hi:
            return c.error(path, f"{dotted(path)} {value} is out of range ({lo}..{hi})")
        return value

    return check


port = integer(1, 65535, " port")


def enum(choices: Iterable, *, coerce_int: bool = False) -> Checker:
    choices = tuple(choices)

    def check(c: Collector, path: tuple, value: Any) -> Any:
        if coerce_int:
            value = _as_text(c, path, value)
            if value is INVALID:
                return value
        if isinstance(value, float):
            raw = c.raw(path)
            if raw in choices:
                return c.error(
                    path,
                    f"{dotted(path)} must be a string, not the number {value!r}",
                    f"write \"{raw}\" (YAML reads {raw} as a number)",
                )
            supported = ", ".join(f'"{ch}"' for ch in choices)
            return c.error(
                path,
                f"{dotted(path)} {raw} is not supported; use one of: {supported}",
                "quote the version (YAML reads an unquoted version as a number)",
            )
        if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) in choices:
            return int(value)  # a quoted integer choice ("16") means the integer
        if value not in choices:
            listed = ", ".join(str(ch) for ch in choices)
            hint = did_you_mean(str(value), [str(ch) for ch in choices]) if isinstance(value, str) else None
            return c.error(path, f"{dotted(path)} {value!r} is not supported; use one of: {listed}", hint)
        return value

    return check


def listof(item: Checker, *, unique: bool = True, min_len: int = 0, max_len: int = 10_000) -> Checker:
    def check(c: Collector, path: tuple, value: Any) -> Any:
        if not isinstance(value, list):
            return c.error(path, f"{dotted(path)} must be a list, not {kind_of(value)}", "write [a, b] or one '- item' per line")
        if len(value) < min_len:
            return c.error(path, f"{dotted(path)} needs at least {min_len} item{'s' if min_len > 1 else ''}")
        if len(value) > max_len:
            return c.error(path, f"{dotted(path)} has more than {max_len} items")
        out = []
        seen: set = set()  # a set, not `in out`: a 5,000-item list stays linear
        ok = True
        for i, v in enumerate(value):
            got = item(c, path + (i,), v)
            if got is INVALID:
                ok = False
            elif unique and got in seen:
                c.error(path + (i,), f"{dotted(path + (i,))} {got!r} is listed twice")
                ok = False
            else:
                out.append(got)
                seen.add(got)
        return tuple(out) if ok else INVALID

    return check


# What a URL may hold unencoded (RFC 3986: unreserved, gen-delims but '#' and '?', sub-delims
# but "'"), and '%' only as the start of a %XX escape. Everything else (spaces, quotes,
# backslashes, backticks, braces, '#' that nix.conf reads as a comment, non-ASCII) must be
# percent-encoded: a URL that holds it unencoded is refused rather than guessed at. '[' and ']'
# pass this test but are then admitted only around an IP-literal host (curl globs them).
URL_TEXT = re.compile(r"(?:[A-Za-z0-9._~:/@!$&()*+,;=\[\]-]|%[0-9A-Fa-f]{2})*")


def url(c: Collector, path: tuple, value: Any) -> Any:
    from urllib.parse import urlsplit  # lazy: most specs have no URL

    value = string(max_len=2048)(c, path, value)
    if value is INVALID:
        return value
    if any(ch.isspace() for ch in value) or any(ch in value for ch in "\"'`<>\\{}|^"):
        return c.error(path, f"{dotted(path)} {value!r} is not a valid URL (it contains spaces or quoting characters)")
    if "?" in value or "#" in value:
        # even an empty '#' matters: nix.conf and NIX_CONFIG read the rest of the line as a comment
        return c.error(
            path,
            f"{dotted(path)} {value!r} must not have a query or fragment ('?' or '#')",
            "write the plain URL; percent-encode a literal '?' as %3F and '#' as %23",
        )
    bad = next((ch for ch in value if not URL_TEXT.fullmatch(ch) and ch != "%"), None)
    if bad is not None or not URL_TEXT.fullmatch(value):
        what = f"the character {bad!r}" if bad is not None else "a '%' that is not followed by two hex digits"
        return c.error(
            path,
            f"{dotted(path)} {value!r} is not a valid URL: it contains {what}",
            "percent-encode it (a space is %20, '%' itself is %25, non-ASCII text as UTF-8 bytes)",
        )
    if _brackets_outside_ip_literal(value):
        # curl (in the model-fetch unit, env/mirrors.sh) expands `x[1-3]` into three URLs
        return c.error(
            path,
            f"{dotted(path)} {value!r} is not a valid URL: '[' and ']' may only enclose an IP address host (http://[::1]:8080/)",
            "percent-encode them elsewhere: '[' is %5B, ']' is %5D",
        )
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return c.error(path, f"{dotted(path)} {value!r} is not a valid URL: {exc}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return c.error(path, f"{dotted(path)} {value!r} is not an http(s) URL", "write it as https://host/path")
    if parts.username is not None or parts.password is not None:
        return c.error(
            path,
            f"{dotted(path)} has credentials in the URL",
            "secrets never go in the spec; configure the credentials outside it (netrc, a secrets file)",
        )
    return value


def _brackets_outside_ip_literal(value: str) -> bool:
    """Whether '[' or ']' appear anywhere but around an IP-literal host (RFC 3986 3.2.2: the
    only place they may stand unencoded). Judged before urlsplit, whose own complaint about a
    bracket in a host differs between Python releases; '?' and '#' are already refused, so
    the authority ends at the first '/'."""
    _, scheme_sep, rest = value.partition("://")
    authority, _, path = (rest if scheme_sep else value).partition("/")
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        host = host[host.find("]") + 1 :]  # what follows the literal: ':port' or nothing
    return any(ch in host + path for ch in "[]")


def abspath(c: Collector, path: tuple, value: Any) -> Any:
    value = string(max_len=1024)(c, path, value)
    if value is INVALID:
        return value
    if not value.startswith("/"):
        example = f"/run/secrets/{path[-1]}" if str(path[-1]).endswith("_file") else f"/{value.lstrip('./')}"
        return c.error(path, f"{dotted(path)} {value!r} must be an absolute path", f"for example {example}")
    parts = value.split("/")[1:]
    if any(p in ("", ".", "..") for p in parts) or any(ch.isspace() for ch in value) or '"' in value or "\\" in value or "$" in value:
        return c.error(
            path,
            f"{dotted(path)} {value!r} is not a clean absolute path",
            "no '..', '.', '//', spaces, quotes, backslashes or '$' in paths",
        )
    return value


IFNAME = r"[A-Za-z0-9_.-]{1,15}"  # a Linux interface name (IFNAMSIZ 16); compiled at first use


def host(c: Collector, path: tuple, value: Any) -> Any:
    import ipaddress  # lazy: most specs keep the default host

    value = string(max_len=64)(c, path, value)
    if value is INVALID:
        return value
    if value == "localhost":
        return value
    address, percent, zone = value.partition("%")
    if percent and not re.fullmatch(IFNAME, zone):
        # Python accepts any text as an IPv6 zone; it reaches shell, Nix and unit files.
        return c.error(
            path,
            f"{dotted(path)} {value!r} has a zone that is not a network interface name",
            "write the interface after '%' (letters, digits, '.', '_', '-'), as in fe80::1%eth0",
        )
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return c.error(
            path,
            f"{dotted(path)} {value!r} is not an IP address",
            "use 127.0.0.1 (the default) to keep a service local, or 0.0.0.0 to expose it",
        )
    return value


def mapping(
    c: Collector,
    path: tuple,
    value: Any,
    keys: Iterable[str],
    explain: Callable[[str], tuple[str, str] | None] | None = None,
) -> dict | object:
    """Check that `value` is a mapping whose keys are all in `keys`; report unknown ones.

    `explain(key)` may return a (message, hint) that says more than "unknown key".
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        return c.error(path, f"{dotted(path)} must be a mapping, not {kind_of(value)}")
    keys = list(keys)
    for key in value:
        if key not in keys:
            special = explain(key) if explain else None
            if special:
                c.error(path + (key,), special[0], special[1], at_key=True)
                continue
            where = f"in {dotted(path)}" if path else "at the top level"
            c.error(
                path + (key,),
                f"unknown key '{shown(key)}' {where}",
                did_you_mean(key, keys) or ("known keys: " + ", ".join(keys)),
                at_key=True,
            )
    return value


# --- value checkers shared by the spec and the service kinds -----------------------------------

OLLAMA_MODEL = string(
    pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9][A-Za-z0-9._-]*)?",
    describe="an Ollama model name (name:tag, or a registry path such as hf.co/org/repo:quant)",
    max_len=256,
)
IMAGE = string(
    pattern=r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})",
    describe="a container image pinned to a tag or digest (registry/name:tag)",
    max_len=512,
)
SHA256 = string(pattern=r"[0-9a-f]{64}", describe="a sha256 hex digest (64 lowercase hex digits)")
MEMSIZE = string(pattern=r"(?i)[0-9]+(b|k|kb|m|mb|g|gb)?", describe="a Redis memory size such as 512mb", coerce_int=True)
ENV_NAME = Word(r"[A-Za-z_][A-Za-z0-9_]*")
# Names that hold secrets: the words anywhere (PGPASSWORD, AWS_SECRET_ACCESS_KEY), and TOKEN
# or PAT as a whole word (HF_TOKEN, GITHUB_PAT; not TOKENIZERS_PARALLELISM).
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|api_?key|access_?key|private_?key|credential)|(^|_)(tokens?|pat)(_|$)")
URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")
INLINE_SECRETS = ("password", "passwd", "secret", "secret_key", "token", "api_key", "apikey")

NAME_RE = Word(r"[a-z][a-z0-9-]{0,62}")
NAME = string(pattern=NAME_RE, describe="a valid name (lowercase letters, digits and '-', starting with a letter, at most 63)")


def one_of(c: Collector, path: tuple, value: Any, keys: tuple[str, ...], example: str) -> Any:
    """A mapping that makes one choice: exactly one of `keys` -> (key, its value), or INVALID."""
    data = mapping(c, path, value, keys)
    if data is INVALID:
        return INVALID
    if len(data) != 1:
        return c.error(path, f"{dotted(path)} needs exactly one of {', '.join(keys[:-1])} or {keys[-1]}", example)
    ((key, raw),) = data.items()
    return key, raw


_SETTING_TEXT = string(max_len=4096)


def setting_value(c: Collector, path: tuple, value: Any, allowed: str = "text, a number or true/false") -> Any:
    """A server configuration value (postgresql.conf, Qdrant's config): a boolean, an integer,
    a finite number or bounded text; `allowed` names what else the caller takes."""
    if isinstance(value, float) and not math.isfinite(value):
        return c.error(path, f"{dotted(path)} must be a finite number, not {value!r}")
    if isinstance(value, (bool, int, float)):
        return value
    if not isinstance(value, str):
        return c.error(path, f"{dotted(path)} must be {allowed}, not {kind_of(value)}")
    return _SETTING_TEXT(c, path, value)


def env_vars(c: Collector, path: tuple, value: Any, managed: dict[str, str] | None = None) -> dict[str, str]:
    """A mapping of environment variables NAME: value (the top-level `env:` and a service's);
    `managed`: names stackgen sets itself, with why. Secrets are refused: never in the spec."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.error(path, f"{dotted(path)} must be a mapping of NAME: value, not {kind_of(value)}")
        return {}
    out: dict[str, str] = {}
    for key, val in value.items():
        kpath = path + (key,)
        if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
            c.error(kpath, f"{dotted(path)} name {key!r} is not a valid variable name", "use letters, digits and '_', not starting with a digit", at_key=True)
            continue
        if managed and key in managed:
            c.error(kpath, f"{dotted(kpath)} is managed by stackgen", managed[key], at_key=True)
            continue
        if SECRET_NAME.search(key):
            c.error(
                kpath,
                f"{dotted(kpath)} looks like a secret; secrets are never written into the spec",
                "keep it out of stack.yaml: load it from a file at run time (direnv, sops-nix, a secrets manager)",
                at_key=True,
            )
            continue
        got = string(allow_newlines=True, coerce_int=True, max_len=32768)(c, kpath, val)
        if got is not INVALID and URL_CREDENTIALS.search(got):
            c.error(
                kpath,
                f"{dotted(kpath)} holds a URL with a password in it; secrets are never written into the spec",
                "drop the password from the URL and supply it at run time (e.g. PGPASSFILE, a .netrc, a secrets manager)",
            )
        elif got is not INVALID:
            out[key] = got
    return dict(sorted(out.items()))
