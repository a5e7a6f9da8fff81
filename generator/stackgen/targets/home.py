"""The `home-manager` target: nix/home.nix, a home-manager module for a non-NixOS workstation.

Ollama runs natively (home-manager's `services.ollama`); the other services run as rootless
Quadlet containers through home-manager's `services.podman.containers`, serialized from
`containers.plan` as the compose and quadlet targets are (same images, ports, volumes,
commands, environment and healthchecks, written with the quadlet target's escaping). What is
home-manager's own:
- Ollama is no container: its client, Open WebUI, shares the host's network to reach it on the
  host's loopback, and depends on the user unit `ollama.service` instead of a container.
- Secrets come from `stackgen.*` options set in the user's configuration (the spec's `*_file`
  paths are only their defaults). A Postgres or Redis password file is mounted where `plan`
  mounts one; whatever else depends on whether it is set is planned both ways and chosen in
  Nix (`mkIf`). Qdrant and Open WebUI take systemd environment files instead.
- Postgres gets an owner role per database with the password, as the NixOS module does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import containers, mirrordata
from ..containers import Container
from ..escape import hm_quadlet_env, systemd_raw, systemd_words
from ..render import Templates
from ..spec.model import Spec
from .compose import INITDB_TARGET, port_binding
from .nixos import copy_modules, services_by_kind
from .quadlet import START_TIMEOUT, health_entries

# kind -> stackgen.<option> of a password file mounted into the container (plan's secret)
PASSWORD_OPTIONS = {"postgres": "postgres.passwordFile", "redis": "redis.passwordFile"}
# kind -> stackgen.<option> of an environment file (podman --env-file) holding the service's key
ENVIRONMENT_FILE_OPTIONS = {"qdrant": "qdrant.environmentFile", "open-webui": "openWebui.environmentFile"}
SECRET_KEYS = ("password_file", "api_key_file", "secret_key_file")
NATIVE_KINDS = ("ollama",)  # run by home-manager's own modules; every other kind is a container
PLACEHOLDER = "/stackgen-placeholder"  # stands for the option's file while planning; never rendered


def render(spec: Spec, tpl: Templates) -> dict[str, str]:
    ollama = spec.services.get("ollama")
    imports = ["ollama-models.nix"] if ollama is not None and ollama.models else []
    entries = [container(spec, unset, given) for unset, given in _plans(spec) if unset.kind not in NATIVE_KINDS]
    files = {
        "nix/home.nix": tpl(
            "home/home.nix.j2",
            imports=imports,
            pypi=mirrordata.pypi_index(spec),
            hf=mirrordata.hf_endpoint(spec),
            svc=services_by_kind(spec),
            containers=entries,
            network=spec.name,
            volumes=[v for c in entries for v in c["volumes"]],
            postgres_init=next((c["init"] for c in entries if c["init"]), None),
            secrets_mounted=any(c["password"] or c["environment_file"] for c in entries),
        )
    }
    if PLACEHOLDER in files["nix/home.nix"]:
        raise AssertionError("the planning placeholder for a password file reached home.nix")
    files.update(copy_modules("home", imports))
    return files


def _plans(spec: Spec) -> list[tuple[Container, Container]]:
    """Each container planned without its password file and with one."""
    host_network = ("open-webui",) if spec.has("ollama") else ()  # to reach the native Ollama

    def peer(kind: str) -> str:
        return f"{spec.name}-{kind}"  # the container's name, which is its name on the network

    unset, given = (containers.plan(_with_password(spec, path), peer, host_network) for path in (None, PLACEHOLDER))
    return list(zip(unset, given))


def _with_password(spec: Spec, path: str | None) -> Spec:
    """The spec with no *_file secrets, except `path` as every password file of PASSWORD_OPTIONS."""
    services = {}
    for kind, svc in spec.services.items():
        options = {**svc.options, **{key: None for key in SECRET_KEYS if key in svc.options}}
        if kind in PASSWORD_OPTIONS:
            options["password_file"] = path
        services[kind] = replace(svc, options=options)
    return replace(spec, services=services)


def container(spec: Spec, unset: Container, given: Container) -> dict[str, Any]:
    """One `services.podman.containers.<name>` entry as data for the template: the options
    common to both plans, and those that only hold without (`unset`) or with (`given`) the
    password file."""
    common, only_unset, only_given = _split(_options(spec, unset), _options(spec, given))
    option = PASSWORD_OPTIONS.get(unset.kind)
    # the plans may differ only by the password file: its mount, and the init script's password lines
    password_sql = []
    if unset.kind == "postgres" and given.secrets:
        databases = list(spec.services["postgres"].options["databases"])
        password_sql = containers.postgres_password_sql(databases, containers.secret_path(given.secrets[0][0]))
    init_differs = (unset.init_sql or "") + "".join(line + "\n" for line in password_sql) != (given.init_sql or "")
    if init_differs or (only_unset or only_given) and not option:
        raise AssertionError(f"{unset.kind}: the two plans differ beyond its password file")
    secret = containers.secret_path(given.secrets[0][0]) if option else None
    return {
        "kind": unset.kind,
        "name": f"{spec.name}-{unset.kind}",
        "volumes": [f"{spec.name}-{name}" for name, _ in unset.volumes],
        "options": common,
        "password": {"option": option, "mount": f":{secret}:ro", "if_set": only_given, "if_unset": only_unset}
        if secret
        else None,
        "environment_file": ENVIRONMENT_FILE_OPTIONS.get(unset.kind),
        "init": postgres_init(spec, unset, secret) if unset.kind == "postgres" else None,
    }


def postgres_init(spec: Spec, ctr: Container, secret: str | None) -> dict[str, Any] | None:
    """The init script: plan's SQL (databases, owner roles, extensions), and the roles'
    password (`password`: only when the option's password file is set)."""
    if not ctr.init_sql:
        return None
    databases = list(spec.services["postgres"].options["databases"])
    password = containers.postgres_password_sql(databases, secret) if secret else []
    return {"lines": ctr.init_sql.splitlines(), "password": password, "mount": f":{INITDB_TARGET}:ro"}


def _options(spec: Spec, ctr: Container) -> dict[str, Any]:
    """The container as home-manager options, every value escaped for the unit it lands in
    (home-manager copies them into the Quadlet file as they are, except `environment`)."""
    stack = spec.name
    opts: dict[str, Any] = {"image": systemd_raw(ctr.image)}
    opts["network"] = ["host"] if ctr.host_network else [f"{stack}.network"]
    opts["ports"] = [port_binding(*p) for p in ctr.ports]
    opts["volumes"] = [f"{stack}-{name}.volume:{path}" for name, path in ctr.volumes]
    opts["volumes"] += [systemd_raw(f"{host}:{path}:ro") for host, path in ctr.binds]
    opts["environment"] = {k: hm_quadlet_env(v) for k, v in ctr.env.items()}
    opts["exec"] = systemd_words(ctr.command) if ctr.command else None
    opts["devices"] = [containers.GPU_DEVICE] if ctr.gpu else []
    units = [_unit(stack, dep) for dep in ctr.depends_on]
    opts["extraConfig"] = {
        "Unit": {"Requires": units, "After": units},
        "Container": dict(health_entries(ctr.health)),
        "Service": {"TimeoutStartSec": START_TIMEOUT},
    }
    return _prune(opts)


def _unit(stack: str, kind: str) -> str:
    """The user unit that runs `kind`: home-manager's Ollama, else the container's."""
    return "ollama.service" if kind == "ollama" else f"podman-{stack}-{kind}.service"


def _prune(value: Any) -> Any:
    """Drop empty values (and None): an option left unset keeps home-manager's default."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {})}
    return value


def _split(a: dict[str, Any], b: dict[str, Any]) -> tuple[dict, dict, dict]:
    """(what a and b share, what only a holds, what only b holds), attribute by attribute;
    a list or string that differs goes whole to both sides."""
    common: dict[str, Any] = {}
    only_a: dict[str, Any] = {}
    only_b: dict[str, Any] = {}
    for key in dict.fromkeys([*a, *b]):
        if key in a and key in b and isinstance(a[key], dict) and isinstance(b[key], dict):
            parts = _split(a[key], b[key])
            for side, part in zip((common, only_a, only_b), parts):
                if part:
                    side[key] = part
        elif a.get(key) == b.get(key):
            common[key] = a[key]
        else:
            if key in a:
                only_a[key] = a[key]
            if key in b:
                only_b[key] = b[key]
    return common, only_a, only_b
