"""What `container` and `app` share: options for a program stackgen knows nothing about
(image, command, env, volumes, a health description given in the spec, `uses:`)."""

from __future__ import annotations

import re
from typing import Any

from ..spec import checks as ck
from ..spec.checks import INVALID, Collector, dotted
from .base import Endpoint, Kind

HTTP_PATH = r"/[A-Za-z0-9._~/%:@!$&'()*+,;=-]*"  # compiled at first use
VOLUME_NAME = ck.string(pattern=ck.NAME_RE, describe="a volume name (lowercase letters, digits and '-')")


def command(c: Collector, path: tuple, value: Any) -> Any:
    """A program and its arguments, as a list of words (never a shell line)."""
    if isinstance(value, str):
        import shlex  # only for this hint

        return c.error(path, f"{dotted(path)} must be a list of words, not a string", f"write it as a list: {shlex.split(value) if value.count(chr(34)) % 2 == 0 else '[program, arg, ...]'}")
    return ck.listof(ck.string(max_len=4096), unique=False, min_len=1, max_len=1000)(c, path, value)


def health(c: Collector, path: tuple, value: Any) -> Any:
    """{http: /path} | {tcp: true} | {command: [...]} -> ("http", path) | ("tcp", None) | ("command", words)."""
    choice = ck.one_of(c, path, value, ("http", "tcp", "command"), "for example health: {http: /health}")
    if choice is INVALID:
        return INVALID
    key, raw = choice
    if key == "http":
        got = ck.string(max_len=1024)(c, path + (key,), raw)
        if got is INVALID:
            return got
        if not re.fullmatch(HTTP_PATH, got):
            return c.error(path + (key,), f"{dotted(path + (key,))} {got!r} is not a URL path", "write the path the service answers 200 on, such as /health")
        return ("http", got)
    if key == "tcp":
        if raw is not True:
            return c.error(path + (key,), f"{dotted(path + (key,))} must be true", "health: {tcp: true} checks that the port accepts a connection")
        return ("tcp", None)
    got = command(c, path + (key,), raw)
    return INVALID if got is INVALID else ("command", got)


def uses(c: Collector, path: tuple, value: Any) -> Any:
    return ck.listof(ck.NAME)(c, path, value)


def volumes(c: Collector, path: tuple, value: Any) -> Any:
    if not isinstance(value, dict):
        return c.error(path, f"{dotted(path)} must be a mapping of volume name: path in the container, not {ck.kind_of(value)}", "for example volumes: {data: /data}")
    out = {}
    for name, target in value.items():
        got_name = VOLUME_NAME(c, path + (name,), name)
        got = ck.abspath(c, path + (name,), target)
        if INVALID in (got_name, got):
            return INVALID
        if ":" in got or "," in got:
            return c.error(path + (name,), f"{dotted(path + (name,))} {got!r} contains ':' or ',', which a volume mount cannot carry")
        out[got_name] = got
    return tuple(out.items())


class Generic(Kind):
    """Options common to `container` and `app`; no default port (it publishes what it is given)."""

    gpu_capable = True
    gpu_default = False  # an image stackgen does not know gets a GPU only when asked
    takes_uses = True
    # home-manager: one that uses a native service (Ollama, an app run from command:) shares the
    # host's network to reach it on loopback; validation keeps it to those that publish no port
    host_network_capable = True
    common_fields = {
        "container_port": ck.port,
        "env": None,  # checked by checks.env_vars (it needs the path)
        "command": command,
        "health": health,
        "uses": uses,
    }
    common_defaults = {"container_port": None, "env": {}, "command": None, "health": None, "uses": ()}

    def inner_port(self, svc) -> int | None:
        return svc.options["container_port"] or svc.port

    def health(self, svc):
        from .health import from_spec

        return from_spec(svc.options["health"])

    def url(self, svc, at: Endpoint) -> str | None:
        return f"http://{at.authority}" if at.port else None

    def check(self, c: Collector, path: tuple, name: str, values: dict[str, Any], targets: tuple[str, ...]) -> None:
        probe = values.get("health")
        if probe and probe[0] in ("http", "tcp") and not (values.get("port") or values.get("container_port")):
            c.error(path + ("health",), f"services.{name}.health.{probe[0]} needs a port to check", f"set services.{name}.port")
