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
  Nix (`mkIf`). So is the environment file of Qdrant and Open WebUI, read in the container.
- Postgres gets an owner role per database with the password, as the NixOS module does.
- An `app` with `command:` is a systemd user service (`systemd.user.services.<stack>-<name>`),
  not a container: its command escaped for ExecStart=, the connection variables of what it
  uses at the addresses those listen on or are published on, each used secret as the path the
  `stackgen.*` option names (only when set), Restart=on-failure, and Requires=/After= on the
  used services' user units.
- A container (or an app run from its image) that uses a native service (Ollama, a command
  app) shares the host's network as Open WebUI does; validation keeps it to those that publish
  no port (spec.instances._home_manager_gaps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import containers, mirrordata
from ..containers import INITDB_TARGET, Container, port_binding
from ..nixmodules import copy_modules, services_by_kind
from ..escape import hm_quadlet_env
from ..records import replace
from ..services.postgres import password_sql as postgres_password_sql
from ..spec.model import Spec
from ..unitfile import START_TIMEOUT, Words, health_entries, unit_value

if TYPE_CHECKING:
    from ..render import Templates

# kind -> (spec key, stackgen.<option>) of the secret file mounted into the container (plan's
# secret): a password file, or an environment file that plan's loader reads in the container.
SECRET_OPTIONS = {
    "postgres": ("password_file", "postgres.passwordFile"),
    "redis": ("password_file", "redis.passwordFile"),
    "qdrant": ("api_key_file", "qdrant.environmentFile"),
    "open-webui": ("secret_key_file", "openWebui.environmentFile"),
}


class OptionFile:
    """The file a `stackgen.<option>` names: known only when Nix evaluates the module, so it
    stands in for the password file while planning. It is no text (no spec value can be
    mistaken for it), and formatting it into a string is a bug that fails at once: the
    template reaches the file through `cfg.<option>`, never through the plan's text."""

    __slots__ = ("option",)

    def __init__(self, option: str):
        self.option = option

    def __repr__(self) -> str:
        return f"OptionFile({self.option!r})"

    def __str__(self) -> str:
        raise TypeError(f"the file of stackgen.{self.option} is only known in Nix; it cannot become text")

    def __format__(self, spec: str) -> str:  # f"{file}" too
        return str(self)


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    ollama = spec.first("ollama")
    imports = ["ollama-models.nix"] if ollama is not None and ollama.models else []
    entries = [container(spec, unset, variants) for unset, variants in _plans(spec) if not _native(spec, unset.name)]
    apps = user_services(spec)
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
            secrets_mounted=any(c["secrets"] for c in entries),
            apps=apps,
            app_waits=any(a["wait_before"] or a["wait_after"] for a in apps),
        )
    }
    files.update(copy_modules("home", imports))
    return files


def _native(spec: Spec, name: str) -> bool:
    """Service `name` runs natively here (Ollama, an app run from command:), not as a container."""
    from ..services import KINDS

    svc = spec.services[name]
    return KINDS[svc.kind].native_on_home(svc)


def _plans(spec: Spec) -> list[tuple[Container, dict[str, Container]]]:
    """Each container planned with every secret file unset, and for each `stackgen.*` secret
    option, planned with only that one set (the container's own secret, or one of a service it
    uses): whether each is set is only known in Nix."""
    # Open WebUI, and a container that uses a native service, share the host's network to reach it
    host_network = [s.name for s in spec.of_kind("open-webui")] if spec.has("ollama") else []
    host_network += [
        s.name for s in spec.services.values()
        if s.kind in ("app", "container") and not _native(spec, s.name) and any(_native(spec, n) for n in s.options["uses"])
    ]  # fmt: skip

    def peer(name: str) -> str:
        return f"{spec.name}-{name}"  # the container's name, which is its name on the network

    def planned(given: set[str], only: set[str] | None = None) -> list[Container]:
        # Ollama runs natively here; its models come from ollama-models.nix, not a pull job
        return [c for c in containers.plan(_with_options(spec, given), peer, host_network, only) if not c.oneshot]

    options = [SECRET_OPTIONS[s.kind][1] for s in spec.services.values() if s.kind in SECRET_OPTIONS]
    base = planned(set())

    def variant(option: str) -> list[Container]:
        """`base` with `option` set: only its service's container and those of its users change."""
        owners = {s.name for s in spec.services.values() if s.kind in SECRET_OPTIONS and SECRET_OPTIONS[s.kind][1] == option}
        touched = owners | {s.name for s in spec.services.values() if owners & set(s.options.get("uses", ()))}
        changed = {c.name: c for c in planned({option}, touched)}
        return [changed.get(c.name, c) for c in base]

    variants = {option: variant(option) for option in options}
    # in the order the container mounts them with every file set (its `uses:` order)
    order = [[name for name, _ in ctr.secrets] for ctr in planned(set(options))]

    def mounted_at(i: int, option: str) -> int:
        added = [name for name, _ in variants[option][i].secrets if name not in dict(base[i].secrets)]
        return order[i].index(added[0]) if added else -1

    return [
        (ctr, {o: variants[o][i] for o in sorted(options, key=lambda o: mounted_at(i, o)) if variants[o][i] != ctr})
        for i, ctr in enumerate(base)
    ]


def _with_options(spec: Spec, given: set[str]) -> Spec:
    """The spec with each secret file of SECRET_OPTIONS unset, except those whose option is in
    `given`: the OptionFile of that option."""
    services = {}
    for name, svc in spec.services.items():
        options = dict(svc.options)
        if svc.kind in SECRET_OPTIONS:
            key, option = SECRET_OPTIONS[svc.kind]
            options[key] = OptionFile(option) if option in given else None
        services[name] = replace(svc, options=options)
    return replace(spec, services=services)


def container(spec: Spec, unset: Container, variants: dict[str, Container]) -> dict[str, Any]:
    """One `services.podman.containers.<name>` entry as data for the template: the options
    common to every plan, and per secret option what only holds without (`if_unset`) or with
    (`if_set`) its file: the container's own secret, or one of a service it uses (its mount and
    the `<NAME>_*_FILE` variable)."""
    own = SECRET_OPTIONS[unset.kind][1] if unset.kind in SECRET_OPTIONS else None
    base = _options(spec, unset)
    common = base
    secrets = []
    init = postgres_init(spec, unset, None) if unset.kind == "postgres" else None
    for option, given in variants.items():
        shared, only_unset, only_given = _split(base, _options(spec, given))
        common = _split(common, shared)[0]
        added = [name for name, _ in given.secrets if name not in dict(unset.secrets)]
        if len(added) != 1 or option != own and (only_unset or (given.init_sql or "") != (unset.init_sql or "")):
            raise AssertionError(f"{unset.kind}: the plans differ beyond the file of stackgen.{option}")
        secret = containers.secret_path(added[0])
        if option == own and unset.kind == "postgres":
            databases = list(spec.services[unset.name].options["databases"])
            expected = (unset.init_sql or "") + "".join(line + "\n" for line in postgres_password_sql(databases, secret))
            if expected != (given.init_sql or ""):
                raise AssertionError("postgres: the init scripts differ beyond the password")
            init = postgres_init(spec, unset, secret)
        secrets.append({"option": option, "mount": f":{secret}:ro", "if_set": only_given, "if_unset": only_unset})
    return {
        "kind": unset.kind,
        "name": f"{spec.name}-{unset.name}",
        "volumes": [f"{spec.name}-{name}" for name, _ in unset.volumes],
        "options": common,
        "secrets": secrets,
        "init": init,
    }


def postgres_init(spec: Spec, ctr: Container, secret: str | None) -> dict[str, Any] | None:
    """The init script: plan's SQL (databases, owner roles, extensions), and the roles'
    password (`password`: only when the option's password file is set)."""
    if not ctr.init_sql:
        return None
    databases = list(spec.services[ctr.name].options["databases"])
    password = postgres_password_sql(databases, secret) if secret else []
    return {"lines": ctr.init_sql.splitlines(), "password": password, "mount": f":{INITDB_TARGET}:ro"}


def _options(spec: Spec, ctr: Container) -> dict[str, Any]:
    """The container as home-manager options, every value escaped for the unit it lands in
    (home-manager copies them into the Quadlet file as they are, except `environment`)."""
    stack = spec.name

    def raw(value: str) -> str:  # a [Container] value Quadlet copies into ExecStart=
        return unit_value("Container", value)

    opts: dict[str, Any] = {"image": raw(ctr.image)}
    opts["network"] = ["host"] if ctr.host_network else [raw(f"{stack}.network")]
    opts["ports"] = [raw(port_binding(*p)) for p in ctr.ports]
    opts["volumes"] = [raw(f"{stack}-{name}.volume:{path}") for name, path in ctr.volumes]
    opts["volumes"] += [raw(f"{host}:{path}:ro") for host, path in ctr.binds]
    opts["environment"] = {k: hm_quadlet_env(v) for k, v in ctr.env.items()}
    opts["exec"] = unit_value("Container", Words(ctr.command)) if ctr.command else None
    opts["devices"] = [raw(containers.GPU_DEVICE)] if ctr.gpu else []
    units = [unit_value("Unit", _unit(spec, dep)) for dep in ctr.depends_on]
    opts["extraConfig"] = {
        "Unit": {"Requires": units, "After": units},
        "Container": {key: raw(value) for key, value in health_entries(ctr.health)} if ctr.health else {},
        "Service": {"TimeoutStartSec": unit_value("Service", START_TIMEOUT)},
    }
    return _prune(opts)


def _unit(spec: Spec, name: str) -> str:
    """The user unit that runs service `name`: home-manager's Ollama, an app's own user service,
    else the container's."""
    svc = spec.services[name]
    if svc.kind == "ollama":
        return "ollama.service"
    return f"{spec.name}-{name}.service" if _native(spec, name) else f"podman-{spec.name}-{name}.service"


def user_services(spec: Spec) -> list[dict[str, Any]]:
    """`app` services with `command:`, as data for `systemd.user.services`. Values that are
    known here are escaped here (ExecStart= words, unit names); the environment is passed as
    plain values and written as Environment= words by the template's `envWord` (one escaper,
    in Nix, for these and the `stackgen.*` secret paths only Nix knows). A secret is the path
    its option names, set only when the option is set."""
    from ..escape import systemd_specifiers, systemd_words
    from ..services.health import unit_waits
    from ..services.wiring import native_endpoint, variables

    out = []
    given = _with_options(spec, {option for _, option in SECRET_OPTIONS.values()})  # each secret as its OptionFile
    for svc in spec.of_kind("app"):
        if not svc.options["command"]:
            continue
        used = [given.services[n] for n in svc.options["uses"]]
        conn = variables(given, used, native_endpoint, lambda u, option: u.options[option])
        secrets = {var: value.option for var, value in conn.items() if isinstance(value, OptionFile)}
        env = {**svc.options["env"], **{k: v for k, v in conn.items() if k not in secrets}}
        units = [systemd_specifiers(_unit(spec, n)) for n in svc.options["uses"]]
        command = list(svc.options["command"])
        out.append({
            "unit": f"{spec.name}-{svc.name}",
            "description": systemd_specifiers(f"{svc.name} of {spec.name}"),
            "units": units,
            "env": env,
            "secrets": secrets,
            "args": systemd_words(command),
            "absolute": command[0].startswith("/"),
            **unit_waits(svc, [spec.services[n] for n in svc.options["uses"]]),
        })  # fmt: skip
    return out


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
