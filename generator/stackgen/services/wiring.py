"""Connection variables: what a client of services receives (SPEC "Services, v1.1").

`<NAME>_URL` for every service it uses, the conventional variable (DATABASE_URL, REDIS_URL,
OLLAMA_BASE_URL + OLLAMA_HOST, QDRANT_URL, OPENAI_BASE_URL) when it uses exactly one service of
that kind, and each used secret as a file path (`<NAME>_PASSWORD_FILE`, `<NAME>_API_KEY_FILE`),
never its value. Each target says where a service is reached (`at`: a container name on the
stack's network, an address on the host) and where a secret file is (`secret_file`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Callable

from . import KINDS
from .base import Endpoint

if TYPE_CHECKING:
    from ..spec.model import Service, Spec


def variables(
    spec: "Spec",
    used: list["Service"],
    at: Callable[["Service"], Endpoint],
    secret_file: Callable[["Service", str], str],
) -> dict[str, str]:
    """The connection variables of `used`, in a stable order: per service, as `used` lists them."""
    per_kind = Counter(u.kind for u in used)
    env: dict[str, str] = {}
    for svc in used:
        kind = KINDS[svc.kind]
        where = at(svc)
        url = kind.url(svc, where) if where.port else None
        if url:
            env[f"{svc.var}_URL"] = url
        for option, suffix in kind.secret_variables.items():
            if svc.options.get(option):
                env[f"{svc.var}_{suffix}"] = secret_file(svc, option)
        if per_kind[svc.kind] == 1:
            for name, value in kind.conventional_env(svc, where).items():
                env.setdefault(name, value)  # a <NAME>_URL of the same name came first
    return env


def native_endpoint(svc: "Service") -> Endpoint:
    """Where a program on the service's own machine reaches it: its address (loopback for a
    wildcard or localhost), at its port."""
    host = {"0.0.0.0": "127.0.0.1", "localhost": "127.0.0.1", "::": "::1"}.get(svc.host, svc.host)
    return Endpoint(host, svc.port)


def native(spec: "Spec", used: list["Service"]) -> dict[str, str]:
    """The connection variables for a program on the host (the dev shell, a NixOS service):
    addresses, and the secret files at their paths on the host."""
    return variables(spec, used, native_endpoint, lambda svc, option: svc.options[option])


def names(used: list["Service"]) -> list[tuple[str, str]]:
    """(variable, service name) for every variable `variables` may set for a client of `used`
    (secrets counted as set): what validation checks for clashes."""
    per_kind = Counter(u.kind for u in used)
    out = []
    for svc in used:
        kind = KINDS[svc.kind]
        out.append((f"{svc.var}_URL", svc.name))
        out += [(f"{svc.var}_{suffix}", svc.name) for suffix in kind.secret_variables.values()]
        if per_kind[svc.kind] == 1:
            out += [(name, svc.name) for name in kind.conventional]
    return out
