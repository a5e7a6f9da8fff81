"""What each declared service looks like as a container, for the compose, quadlet and
home-manager targets.

`plan` turns the spec's instances into a list of `Container`s, asking each instance's kind
(stackgen.services) for its entry. The targets only serialize that list (compose YAML, Quadlet
INI, home-manager's `services.podman.containers`); none decides anything about images, ports,
health or secrets on its own.

Strings here are the values the container must see. Each serializer escapes them for its
own format (compose interpolation, systemd specifiers and quoting).
"""

from __future__ import annotations

from typing import Callable, Collection

from . import mirrordata
from .records import dataclass, field  # as dataclasses', without exec() or importing dataclasses
from .spec.model import Service, Spec

INITDB_TARGET = "/docker-entrypoint-initdb.d/10-stackgen.sql"  # where a postgres image finds its init script
GPU_DEVICE = "nvidia.com/gpu=all"  # CDI name; `nvidia-ctk cdi generate` creates the spec
SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class Health:
    command: str  # run by /bin/sh inside the container; exit 0 = healthy
    start_period: str = "30s"
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 5
    # The same check in a form an orchestrator runs itself (Kubernetes' httpGet/tcpSocket probes,
    # for images without wget, curl or nc): ("http", path, port) or ("tcp", None, port); None:
    # only `command` describes it.
    probe: tuple | None = None


@dataclass(frozen=True)
class Container:
    kind: str  # the service's kind
    image: str
    health: Health | None  # None: the image's own, or none (a `container` or `app` without health:)
    ports: tuple[tuple[str, int, int], ...]  # (host address, host port, container port)
    volumes: tuple[tuple[str, str], ...] = ()  # (volume name, container path): named volumes for state
    binds: tuple[tuple[str, str], ...] = ()  # (host path, container path), read-only
    secrets: tuple[tuple[str, str], ...] = ()  # (secret name, host file): mounted at /run/secrets/<name>
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()  # arguments after the image (empty: the image's own)
    gpu: bool = False
    depends_on: tuple[str, ...] = ()  # names of the services that must be up (healthy where they have a health check) first
    init_sql: str | None = None  # postgres: run once on an empty data volume
    host_network: bool = False  # shares the host's network: publishes nothing, listens on the service's host
    name: str = ""  # the service's name (the compose service, the Quadlet unit); defaults to the kind
    build: tuple[str, str] | None = None  # (context, containerfile) relative to the project: an image built locally
    profiles: tuple[str, ...] = ()  # compose profiles
    entrypoint: tuple[str, ...] = ()  # replaces the image's entrypoint (empty: the image's own)
    oneshot: bool = False  # a job that runs once to completion (a model pull), not a service
    # (name, command) run to completion, in order, before the service starts, in its image with
    # its volumes and environment (Kubernetes init containers; see Kind.kubernetes)
    init: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # the group that must own the volumes: an image that runs as a user of its own from the start
    # cannot take over a fresh (root-owned) volume itself (Kubernetes: the pod's fsGroup)
    fs_group: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.kind)


def port_binding(host: str, host_port: int, container_port: int) -> str:
    """A published port as compose, Quadlet and home-manager write it."""
    host = f"[{host}]" if ":" in host else host  # IPv6 addresses are bracketed
    return f"{host}:{host_port}:{container_port}"


def secret_path(name: str) -> str:
    return f"{SECRETS_DIR}/{name}"


# A POSIX sh program that exports the NAME=value lines of an environment file ($1) and execs
# the rest of its arguments: the image's own command. It is how api_key_file and
# secret_key_file reach Qdrant and Open WebUI, which read their keys from environment
# variables only. podman-compose would read an `env_file:` itself and pass every line as
# `podman create -e NAME=value`, where any user of the host sees it in `ps`; mounted as a
# secret and read in the container, the key is on no command line.
#
# The file is parsed, never executed: lines are `NAME=value` as in a systemd EnvironmentFile
# (what NixOS reads); blank lines and lines starting with `#` or `;` are skipped; whitespace
# around the name and the value is dropped, as is one pair of quotes around the whole value;
# nothing else is interpreted (no `$`, backslash or command substitution). The loader's own
# variables start with `_sg_` (a file cannot set those): a file's `n=$(cmd)` must not reach its
# arithmetic, which shells evaluate. A file that sets
# no variable (missing, unreadable, or holding a bare key) stops the container: a service
# must not start without the key it was given.
ENV_FILE_LOADER = (
    "_sg_f=$1; shift; _sg_ws=$(printf ' \\t\\r'); _sg_n=0; _sg_found=0; "
    "while IFS= read -r _sg_line || [ -n \"$_sg_line\" ]; do "
    "_sg_n=$((_sg_n+1)); _sg_line=${_sg_line#\"${_sg_line%%[!$_sg_ws]*}\"}; "
    "case $_sg_line in '#'*|';'*) continue;; *=*) ;; *) continue;; esac; "
    "_sg_name=${_sg_line%%=*}; _sg_name=${_sg_name%\"${_sg_name##*[!$_sg_ws]}\"}; "
    "_sg_value=${_sg_line#*=}; _sg_value=${_sg_value#\"${_sg_value%%[!$_sg_ws]*}\"}; "
    "_sg_value=${_sg_value%\"${_sg_value##*[!$_sg_ws]}\"}; "
    "case $_sg_value in '\"'*'\"'|\"'\"*\"'\") _sg_value=${_sg_value#?}; _sg_value=${_sg_value%?};; esac; "
    "case $_sg_name in ''|[0-9]*|*[!A-Za-z0-9_]*|_sg_*) "
    "echo \"stackgen: line $_sg_n of $_sg_f is not NAME=value: skipped\" >&2; continue;; esac; "
    "export \"$_sg_name=$_sg_value\"; _sg_found=$((_sg_found+1)); "
    "done <\"$_sg_f\"; "
    "[ \"$_sg_found\" -gt 0 ] || { echo \"stackgen: $_sg_f sets no NAME=value variable\" >&2; exit 1; }; "
    "exec \"$@\""
)


def with_environment_file(secret: tuple[str, str] | None, command: tuple[str, ...]) -> tuple[str, ...]:
    """`command` (the image's entrypoint + cmd), run with the variables of the environment file
    mounted as `secret`; unchanged without one."""
    if not secret:
        return ()
    return ("sh", "-c", ENV_FILE_LOADER, "stackgen-env", secret_path(secret[0]), *command)


def plan(spec: Spec, peer: Callable[[str], str], host_network: Collection[str] = (), only: Collection[str] | None = None) -> list[Container]:
    """The spec's services as containers. `peer(name)` is the host name another container
    reaches the service `name` by (the compose service name, or the Quadlet container name).

    Services named in `host_network` (only kinds that can) share the host's network, for a
    client of a service that is not a container (home-manager's native Ollama): such a container
    publishes no port, listens on the service's own address and port, and reaches every peer at
    the address that peer listens on or is published on (`Service.local_url`), not through `peer`.
    `only`: plan just these services (in the spec's order).
    """
    from .services import KINDS

    unsupported = sorted(n for n in host_network if n in spec.services and not KINDS[spec.services[n].kind].host_network_capable)
    if unsupported:
        raise AssertionError(f"no host-network container for {unsupported}")
    out = []
    for name, svc in spec.services.items():
        if only is not None and name not in only:
            continue
        kind = KINDS[svc.kind]
        out.append(kind.container(spec, svc, peer, host_network=True) if name in host_network else kind.container(spec, svc, peer))
        out += kind.jobs(spec, svc, peer)
    return out


def base(svc: Service, kind, health: Health | None, **kw) -> Container:
    """The parts every kind's container shares: image, published ports, data volume, GPU."""
    inner = kind.inner_port(svc)
    published = [(svc.host, svc.port, inner)] if svc.port is not None else []
    published += kw.pop("extra_ports", ())
    return Container(
        kind=svc.kind,
        name=svc.name,
        image=kw.pop("image", None) or svc.image or kind.default_image(svc),
        health=health,
        ports=() if kw.get("host_network") else tuple((_address(host), port, inner) for host, port, inner in published),
        volumes=_volumes(svc, kind, kw),
        gpu=svc.gpu,
        profiles=svc.profiles,
        **kw,
    )


def _volumes(svc: Service, kind, kw: dict) -> tuple[tuple[str, str], ...]:
    """The kind's data volume, named <name>-data (at `data=` when the kind passes one), or the
    `volumes=` it passes."""
    data = kw.pop("data", None) or kind.data
    volumes = kw.pop("volumes", None)
    if volumes is not None:
        return volumes
    return ((f"{svc.name}-data", data),) if data else ()


def _address(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host  # port publishing takes addresses only


def secret(svc: Service, key: str) -> tuple[str, str] | None:
    """The secret for option `key` (a *_file path), named <name>-<what>, or None when unset."""
    host_file = svc.options.get(key)
    if not host_file:
        return None
    return (f"{svc.name}-{key.removesuffix('_file').replace('_', '-')}", host_file)


def mirror_env(spec: Spec, hf: bool = False, pypi: bool = False) -> dict[str, str]:
    env = {}
    if hf and mirrordata.hf_endpoint(spec):
        env["HF_ENDPOINT"] = mirrordata.hf_endpoint(spec)
    if pypi and mirrordata.pypi_index(spec):
        env["PIP_INDEX_URL"] = mirrordata.pypi_index(spec)
        env["UV_DEFAULT_INDEX"] = mirrordata.pypi_index(spec)
    return env


def connection(spec: Spec, svc: Service, peer: Callable[[str], str], host_network: bool = False) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """The connection variables of the services `svc` uses, as a container on the stack's
    network sees them (peers by name, at their port inside their container) or, sharing the
    host's network, at the addresses they listen on or are published on; and the secrets they
    name, mounted into this container."""
    from .services import KINDS, Endpoint
    from .services.wiring import native_endpoint, variables

    def at(used: Service) -> Endpoint:
        if host_network:
            return native_endpoint(used)
        return Endpoint(peer(used.name), KINDS[used.kind].inner_port(used))

    mounts: list[tuple[str, str]] = []

    def secret_file(used: Service, option: str) -> str:
        got = secret(used, option)
        mounts.append(got)
        return secret_path(got[0])

    env = variables(spec, [spec.services[n] for n in svc.options["uses"]], at, secret_file)
    return env, tuple(mounts)
