"""The NixOS module of a stack: what the `nixos` target renders as nix/nixos.nix, and the
`fleet` target once per host (that host's services, bound to its address). Targets never
import each other, so the rendering they share lives here.

Where the nixpkgs branches differ (see NIXOS-FACTS.md), the spec's `nixpkgs:` branch picks
the option shape through spec.model.BRANCH_TABLE. Every value a user may want to change is
set with mkDefault, so their own configuration wins without mkForce. The reusable modules it
imports are copied from modules/nixos/.
"""

from __future__ import annotations

from .records import dataclass  # as dataclasses', without exec() or importing dataclasses
from typing import TYPE_CHECKING

from . import mirrordata
from .nixmodules import services_by_kind
from .services import postgres as pg
from .services import qdrant
from .spec.model import POSTGRES_EXTENSION_SQL, POSTGRES_PRELOAD, Service, Spec

if TYPE_CHECKING:
    from .render import Templates

# Targets whose containers this host runs through podman, so the module wires CDI for them.
# (Not spec.validate.CONTAINER_TARGETS, which also counts home-manager for its checks.)
HOST_CONTAINER_TARGETS = ("compose", "quadlet")
# Who may log in to an exposed PostgreSQL over TCP (with a password) on a single machine.
ANYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class Placement:
    """The module of one host of a fleet: `spec` then holds that host's services only.

    `peers`: every instance of the stack (bound to its host's address), for the services the
    local ones use; `clients`: the other hosts' addresses, the only ones its firewall rules
    and PostgreSQL's password logins admit (instead of openFirewall, which admits anyone)."""

    host: str
    peers: dict[str, Service]
    clients: tuple[str, ...]


def module(
    spec: Spec,
    tpl: "Templates",
    place: Placement | None = None,
    nixpkgs_config: str = "./nixpkgs-config.nix",
    modules_dir: str = "./modules/nixos/",
) -> tuple[str, list[str]]:
    """The module's text, and the reusable modules (modules/nixos/<name>) it imports from
    `modules_dir`. `nixpkgs_config`: the path of nix/nixpkgs-config.nix from the module."""
    imports = []
    if spec.gpu.nvidia:
        imports.append("nvidia.nix")
    llama = spec.first("llama-cpp")
    fetch = model_fetches(spec)
    if fetch:
        imports.append("model-fetch.nix")
    everyone = place.peers if place else spec.services
    # Open WebUI's Ollama: the one on its own machine, else the stack's first one
    ollama = spec.first("ollama") or next((s for s in everyone.values() if s.kind == "ollama"), None)
    app_units = apps(spec, everyone)
    text = tpl(
        "nixos/nixos.nix.j2",
        spec=spec,
        fleet_host=place.host if place else None,
        branch=spec.branch,
        imports=imports,
        modules_dir=modules_dir,
        nixpkgs_config=nixpkgs_config,
        caches=mirrordata.nix_caches(spec),
        keys=mirrordata.nix_keys(spec),
        hf=mirrordata.hf_endpoint(spec),
        svc=services_by_kind(spec),
        own_options=spec.gpu.nvidia
        or bool(mirrordata.nix_caches(spec))
        or any(spec.has(k) for k in ("postgres", "redis", "qdrant", "open-webui")),
        containers=any(t in spec.targets for t in HOST_CONTAINER_TARGETS),
        llama=llama_cpp(llama) if llama else None,
        postgres=postgres(spec.first("postgres")) if spec.has("postgres") else None,
        pg_networks=client_networks(place.clients) if place else ANYWHERE,
        ollama_url=ollama.local_url if ollama else None,
        open_firewall=place is None,
        firewall=sorted(firewall_ports(spec)) if place is None else [],
        redis=redis_servers(spec),
        fetch=fetch,
        llama_units=llama_units(spec),
        apps=app_units,
        app_waits=any(a["wait_before"] or a["wait_after"] for a in app_units),
        oci=oci_containers(spec, everyone),
        qdrant_settings=qdrant.nixos_settings(spec.first("qdrant")) if spec.has("qdrant") else None,
    )
    return text, imports


def client_networks(addresses: tuple[str, ...]) -> tuple[str, ...]:
    """Each address as the single-host network pg_hba.conf takes (a /32 or /128)."""
    return tuple(f"{a}/{128 if ':' in a else 32}" for a in addresses)


def model_fetches(spec: Spec) -> list[dict]:
    """GGUF downloads (./modules/nixos/model-fetch.nix) before each llama.cpp unit starts."""
    out = []
    for i, svc in enumerate(spec.of_kind("llama-cpp")):
        if svc.options["model_url"]:
            unit = "llama-cpp" if i == 0 else f"llama-cpp-{svc.name}"
            out.append({"key": unit, "svc": svc, "unit": f"{unit}.service"})
    return out


def bind_address(svc: Service) -> str:
    """An IP address to bind (Redis takes no host names)."""
    return "127.0.0.1" if svc.host == "localhost" else svc.host


def gpu_layers(svc: Service) -> int | None:
    """llama.cpp layers to offload: the spec's number, else all of them on a GPU."""
    return svc.gpu_layers if svc.gpu_layers is not None else (999 if svc.gpu else None)


def llama_cpp(svc: Service) -> dict:
    """llama-server flags, as both 26.05's extraFlags and 26.11's `settings` keys."""
    flags: list[tuple[str, int]] = [("ctx-size", svc.context)]
    layers = gpu_layers(svc)
    if layers is not None:
        flags.append(("n-gpu-layers", layers))
    return {
        "extra_flags": [part for name, value in flags for part in (f"--{name}", str(value))],
        "settings": flags,
        "fetch": svc.model_url is not None,
    }


def postgres(svc: Service) -> dict:
    databases = list(svc.databases)
    extensions = list(svc.extensions)
    cron_db = databases[0] if databases else "postgres"
    create = [(db, POSTGRES_EXTENSION_SQL[ext]) for db in databases for ext in extensions if ext != "pg_cron"]
    if "pg_cron" in extensions:
        create.append((cron_db, "pg_cron"))
    return {
        "packages": [pg.NIXOS_EXTENSION_PACKAGES.get(ext, ext) for ext in extensions],
        "preload": ",".join(e for e in POSTGRES_PRELOAD if e in extensions),
        "cron_db": cron_db if "pg_cron" in extensions else None,
        "create": create,
        "settings": pg.nixos_settings(svc),
    }


def firewall_ports(spec: Spec) -> set[int]:
    """Exposed services whose nixpkgs module has no openFirewall option."""
    ports: set[int] = {svc.port for svc in spec.of_kind("llama-cpp")[1:] if svc.exposed}
    pg, qdrant = spec.first("postgres"), spec.first("qdrant")
    if pg is not None and pg.exposed:
        ports.add(pg.port)
    if qdrant is not None and qdrant.exposed:
        ports |= {qdrant.port, qdrant.grpc_port}
    return ports


# --- instances beyond nixpkgs' single-instance modules: units of their own -------------------

# The hardening nixpkgs' services.llama-cpp gives llama-server (nixos/modules/services/misc/
# llama-cpp.nix, read at NixOS/nixpkgs 0d1c6dbeeef1757e7c9e5b8445b247c065ff65e7), which the extra
# llama.cpp servers and the apps get too. Two of its settings only the extra llama.cpp servers
# get (llama_units): MemoryDenyWriteExecute (a JIT in an app's runtime needs W+X memory) and
# ProcSubset=pid (an app may read /proc/meminfo, /proc/cpuinfo).
HARDENING = {
    "DynamicUser": True,
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": ["AF_INET", "AF_INET6", "AF_UNIX"],
    "NoNewPrivileges": True,
    "PrivateMounts": True,
    "PrivateTmp": True,
    "PrivateUsers": True,
    "ProtectClock": True,
    "ProtectControlGroups": True,
    "ProtectHome": True,
    "ProtectKernelLogs": True,
    "ProtectKernelModules": True,
    "ProtectKernelTunables": True,
    "ProtectSystem": "strict",
    "LockPersonality": True,
    "RemoveIPC": True,
    "RestrictNamespaces": True,
    "RestrictRealtime": True,
    "RestrictSUIDSGID": True,
    "SystemCallArchitectures": "native",
    "SystemCallFilter": ["@system-service", "~@privileged"],
    "SystemCallErrorNumber": "EPERM",
    "ProtectProc": "invisible",
    "ProtectHostname": True,
}


def redis_servers(spec: Spec) -> list[dict]:
    """services.redis.servers.<server>: the first instance keeps the stack's name (its unit
    redis-<stack>.service and /var/lib/redis-<stack> stay where v1 put them), the others are
    <stack>-<name>."""
    out = []
    for i, svc in enumerate(spec.of_kind("redis")):
        server = spec.name if i == 0 else f"{spec.name}-{svc.name}"
        out.append({"server": server, "svc": svc, "bind": bind_address(svc), "first": i == 0})
    return out


def unit_of(spec: Spec, svc: Service) -> list[str]:
    """The systemd units that run `svc` on NixOS (what a client requires and starts after)."""
    first = spec.first(svc.kind)
    if svc.kind == "ollama":
        return ["ollama.service"]
    if svc.kind == "llama-cpp":
        return ["llama-cpp.service" if svc is first else f"llama-cpp-{svc.name}.service"]
    if svc.kind == "postgres":
        setup = postgres(svc)["create"] or svc.options["databases"]
        return ["postgresql.service"] + (["stackgen-postgres-setup.service"] if setup else [])
    if svc.kind == "redis":
        server = next(r["server"] for r in redis_servers(spec) if r["svc"] is svc)
        return [f"redis-{server}.service"]
    if svc.kind in ("qdrant", "open-webui"):
        return [f"{svc.kind}.service"]
    if svc.kind == "container":
        return [f"podman-{spec.name}-{svc.name}.service"]
    return [f"{spec.name}-{svc.name}.service"]  # app


def llama_units(spec: Spec) -> list[dict]:
    """llama.cpp servers after the first (nixpkgs' module runs one): a unit each, running the
    same llama-server with the same hardening; its words escaped for ExecStart=."""
    from .escape import systemd_words
    from .services import KINDS

    out = []
    for svc in spec.of_kind("llama-cpp")[1:]:
        args = ["--host", svc.host, "--port", str(svc.port), "--model", svc.options["model"]]
        args += [part for flag, value in KINDS["llama-cpp"].flags(svc) for part in (f"--{flag}", str(value))]
        unit = f"llama-cpp-{svc.name}"
        service = {
            "description": f"llama.cpp server {svc.name} of {spec.name}",
            "after": ["network.target"],
            "wantedBy": ["multi-user.target"],
            "serviceConfig": {
                "Type": "idle",
                "KillSignal": "SIGINT",
                "Restart": "on-failure",
                "RestartSec": 300,
                "PrivateDevices": False,  # the GPU's device nodes
                **HARDENING,
                "MemoryDenyWriteExecute": True,
                "ProcSubset": "pid",
            },
        }
        out.append({
            "unit": unit,
            "svc": svc,
            "service": service,
            "cuda": svc.gpu if spec.gpu.nvidia else None,
            "args": systemd_words(args),
        })  # fmt: skip
    return out


def _credential(used: Service, option: str, creds: list[str]) -> str:
    """LoadCredential= for a secret file a client reads: the unit's DynamicUser cannot read
    the file itself; systemd copies it to $CREDENTIALS_DIRECTORY (%d) for the unit alone."""
    from .containers import secret
    from .escape import systemd_percent

    name, path = secret(used, option)
    creds.append(f"{name}:{systemd_percent(path)}")
    return f"%d/{name}"


def apps(spec: Spec, everyone: dict[str, Service]) -> list[dict]:
    """`app` services: a hardened system unit each, running `command:` (a program not given by
    its absolute path is looked up in the system profile through env(1)). `everyone`: the
    services it may use, by name (on a fleet, also those of the other hosts: no unit to wait for)."""
    from .escape import systemd_percent, systemd_words
    from .services.health import unit_waits
    from .services.wiring import native_endpoint, variables

    out = []
    for svc in spec.of_kind("app"):
        unit = f"{spec.name}-{svc.name}"
        used = [everyone[n] for n in svc.options["uses"]]
        creds: list[str] = []
        conn = variables(spec, used, native_endpoint, lambda u, option: _credential(u, option, creds))
        # Environment= lines: `%` doubled (a literal), except in the %d/... of a credential
        env = {k: systemd_percent(v) for k, v in svc.options["env"].items()}
        env.update({k: v if v.startswith("%d/") else systemd_percent(v) for k, v in conn.items()})
        units = [u for dep in used if dep.name in spec.services for u in unit_of(spec, dep)]
        waits = unit_waits(svc, [dep for dep in used if dep.name in spec.services])
        command = list(svc.options["command"])
        service = {
            "description": f"{svc.name} of {spec.name}",
            "after": ["network.target", *units],
            "requires": units,
            "wantedBy": ["multi-user.target"],
            "environment": {"HOME": f"/var/lib/{unit}", **env},
            "path": ["/run/current-system/sw"],
            "serviceConfig": {
                "Restart": "on-failure",
                "RestartSec": 5,
                "StateDirectory": unit,
                "WorkingDirectory": f"/var/lib/{unit}",
                **HARDENING,
                **({"LoadCredential": creds} if creds else {}),
                **({"TimeoutStartSec": waits["timeout"]} if waits["timeout"] else {}),  # the waits below
            },
        }
        out.append({
            "unit": unit,
            "service": service,
            "args": systemd_words(command),
            "absolute": command[0].startswith("/"),
            **waits,
        })  # fmt: skip
    return out


def oci_containers(spec: Spec, everyone: dict[str, Service]) -> list[dict]:
    """`container` services through virtualisation.oci-containers (podman). One that uses other
    services shares the host's network, where they listen (loopback, mostly); the others
    publish their port on the spec's address."""
    from .containers import GPU_DEVICE, port_binding, secret, secret_path
    from .services import KINDS
    from .services.wiring import native_endpoint, variables

    out = []
    for svc in spec.of_kind("container"):
        kind = KINDS["container"]
        used = [everyone[n] for n in svc.options["uses"]]
        mounts: list[str] = []

        def secret_file(u: Service, option: str) -> str:
            name, path = secret(u, option)
            mounts.append(f"{path}:{secret_path(name)}:ro")
            return secret_path(name)

        env = {**svc.options["env"], **variables(spec, used, native_endpoint, secret_file)}
        inner = kind.inner_port(svc)
        opts: dict = {"image": svc.image}
        if svc.options["command"]:
            opts["cmd"] = list(svc.options["command"])
        if env:
            opts["environment"] = env
        extra = []
        if used:
            extra.append("--network=host")
        elif svc.port is not None:
            opts["ports"] = [port_binding(bind_address(svc), svc.port, inner)]
        volumes = [f"{spec.name}-{svc.name}-{vol}:{path}" for vol, path in svc.options["volumes"]] + mounts
        if volumes:
            opts["volumes"] = volumes
        deps = [f"{spec.name}-{u.name}" for u in used if u.kind == "container" and u.name in spec.services]
        if deps:
            opts["dependsOn"] = deps
        if svc.gpu:
            opts["devices"] = [GPU_DEVICE]
        health = kind.container_health(svc)
        if health is not None:
            # its unit is started once healthy (podman.sdnotify below), and nixpkgs gives it no
            # start timeout (TimeoutStartSec=0, for image pulls): a container that never gets
            # healthy is killed after its start period and retries, so the unit fails instead
            # of waiting for ever
            extra += [
                "--health-cmd=" + health.command,
                f"--health-start-period={health.start_period}",
                f"--health-interval={health.interval}",
                f"--health-timeout={health.timeout}",
                f"--health-retries={health.retries}",
                "--health-on-failure=kill",
            ]
        if extra:
            opts["extraOptions"] = extra
        units = [u for dep in used if dep.kind != "container" and dep.name in spec.services for u in unit_of(spec, dep)]
        out.append({"name": f"{spec.name}-{svc.name}", "options": opts, "units": units, "healthy": health is not None})
    return out
