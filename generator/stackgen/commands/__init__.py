"""The host commands (detect, init, mirrors test, status, models pull, doctor), one module each.

`cli.py` only registers them. Each module keeps its heavy imports (httpx, pynvml) inside the
command function, so `import stackgen.cli` stays cheap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

import click


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain left-aligned text table (no trailing spaces). Every cell is escaped for the
    terminal: a newline or tab in one (a peer's text) would forge rows."""
    from ..errors import printable

    cells = [[str(h) for h in headers]] + [[printable(str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def human(n: int) -> str:
    """Bytes for people: 512 B, 3.0 MiB, 1.88 GiB."""
    if n >= 1024**3:
        return f"{n / 1024**3:.2f} GiB"
    if n >= 1024**2:
        return f"{n / 1024**2:.1f} MiB"
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def load(spec: Path):
    from ..spec import load_spec

    return load_spec(spec, str(spec))


def connect_host(host: str) -> str:
    """Where to reach a service bound to `host` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def base_url(svc) -> str:
    host = connect_host(svc.host)
    return f"http://[{host}]:{svc.port}" if ":" in host else f"http://{host}:{svc.port}"


_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._:/+-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "none"}


def yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text)


def yaml_block(name: str, values: dict, indent: str = "") -> str:
    """A flat `name:` mapping as YAML text (scalars and flow lists), for the suggested blocks."""
    lines = [f"{indent}{name}:"]
    for key, value in values.items():
        if isinstance(value, (list, tuple)):
            text = "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
        else:
            text = yaml_scalar(value)
        lines.append(f"{indent}  {key}: {text}")
    return "\n".join(lines) + "\n"
