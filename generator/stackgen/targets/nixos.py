"""The `nixos` target: nix/nixos.nix, a NixOS module that sets nixpkgs' own service options.

Where the nixpkgs branches differ (see NIXOS-FACTS.md), the spec's `nixpkgs:` branch picks
the option shape through spec.model.BRANCH_TABLE. Every value a user may want to change is
set with mkDefault, so their own configuration wins without mkForce. The reusable modules it
imports are copied from modules/nixos/.
"""

from __future__ import annotations

from .. import mirrordata
from ..nixmodules import copy_modules, services_by_kind
from ..services import postgres as pg
from ..services import qdrant
from ..spec.model import POSTGRES_EXTENSION_SQL, POSTGRES_PRELOAD, Service, Spec

# Targets whose containers this host runs through podman, so the module wires CDI for them.
# (Not spec.validate.CONTAINER_TARGETS, which also counts home-manager for its checks.)
HOST_CONTAINER_TARGETS = ("compose", "quadlet")
# postgresqlPackages attribute of each extension where it is not the extension's own name.
# nixpkgs' `timescaledb` is built with the Timescale License (unfree; `enableUnfree ? true`):
# NixOS gets the Apache-2.0 build, `timescaledb-apache` (same library, without the TSL features
# such as compression and continuous aggregates), which no unfree predicate has to admit.
NIXOS_EXTENSION_PACKAGES = {"timescaledb": "timescaledb-apache"}


def render(spec: Spec, tpl: Templates) -> dict[str, str]:
    imports = []
    if spec.gpu.nvidia:
        imports.append("nvidia.nix")
    llama = spec.first("llama-cpp")
    if llama is not None and llama.model_url:
        imports.append("model-fetch.nix")
    files = {
        "nix/nixos.nix": tpl(
            "nixos/nixos.nix.j2",
            branch=spec.branch,
            imports=imports,
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
            ollama_url=spec.first("ollama").local_url if spec.has("ollama") else None,
            firewall=sorted(firewall_ports(spec)),
            redis_bind=bind_address(spec.first("redis")) if spec.has("redis") else None,
            qdrant_settings=qdrant.nixos_settings(spec.first("qdrant")) if spec.has("qdrant") else None,
        )
    }
    files.update(copy_modules("nixos", imports))
    return files


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
        "packages": [NIXOS_EXTENSION_PACKAGES.get(ext, ext) for ext in extensions],
        "preload": ",".join(e for e in POSTGRES_PRELOAD if e in extensions),
        "cron_db": cron_db if "pg_cron" in extensions else None,
        "create": create,
        "settings": pg.nixos_settings(svc),
    }


def firewall_ports(spec: Spec) -> set[int]:
    """Exposed services whose nixpkgs module has no openFirewall option."""
    ports: set[int] = set()
    pg, qdrant = spec.first("postgres"), spec.first("qdrant")
    if pg is not None and pg.exposed:
        ports.add(pg.port)
    if qdrant is not None and qdrant.exposed:
        ports |= {qdrant.port, qdrant.grpc_port}
    return ports
