"""The validated spec: plain, typed values with every default filled in.

Targets read only this; they never see YAML or positions.
"""

from __future__ import annotations

from typing import Any

from ..branches import BRANCH_TABLE, BRANCHES, DEFAULT_BRANCH, Branch  # noqa: F401 (re-exported)
from ..records import dataclass, field  # as dataclasses', without exec() or importing dataclasses

ALL_TARGETS = ("devshell", "nixos", "home-manager", "compose", "quadlet", "mirrors", "processes", "fleet", "kubernetes")
# The targets a spec renders when it lists none: `fleet` joins them when `hosts:` is present,
# `kubernetes` is rendered only when `targets:` lists it.
DEFAULT_TARGETS = ("devshell", "nixos", "home-manager", "compose", "quadlet", "mirrors", "processes")
# processes: the flake's apps.<system>.services; fleet: its nixosConfigurations
NIX_TARGETS = ("devshell", "nixos", "home-manager", "processes", "fleet")
ALL_SYSTEMS = ("x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin")


PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")
CUDA_MAJORS = ("12", "13")
POSTGRES_VERSIONS = (14, 15, 16, 17, 18)
# The extensions the spec accepts (postgresqlPackages attribute -> CREATE EXTENSION name),
# and those that must be in shared_preload_libraries.
POSTGRES_EXTENSION_SQL = {
    "pgvector": "vector",
    "postgis": "postgis",
    "timescaledb": "timescaledb",
    "pg_cron": "pg_cron",
    "pg_repack": "pg_repack",
    "pg_partman": "pg_partman",
}
POSTGRES_PRELOAD = ("pg_cron", "timescaledb")


@dataclass(frozen=True)
class NixCache:
    url: str
    key: str | None = None


@dataclass(frozen=True)
class Mirrors:
    region: str = "global"
    nix: tuple[NixCache, ...] = ()
    pypi: str | None = None  # explicit override; see `effective_pypi`
    huggingface: str | None = None
    flake_inputs: str = "github"  # "mirror": nixpkgs/home-manager flake inputs from a China mirror


@dataclass(frozen=True)
class Gpu:
    vendor: str = "none"
    cuda: str = "12"
    capabilities: tuple[str, ...] = ()
    open: bool = True  # hardware.nvidia.open: the open kernel module (Turing and newer)

    @property
    def nvidia(self) -> bool:
        return self.vendor == "nvidia"


@dataclass(frozen=True)
class Python:
    version: str = "3.12"
    uv: bool = True

    @property
    def attr(self) -> str:
        return "python" + self.version.replace(".", "")


@dataclass(frozen=True)
class Service:
    """One declared service instance: `name` is its key under services:, `kind` its kind
    (ollama, llama-cpp, ..., container, app: see stackgen.services)."""

    kind: str
    port: int | None  # None: a container or app that listens on no port of the host
    host: str = "127.0.0.1"
    gpu: bool = False
    image: str | None = None  # container image (an override for the built-in kinds)
    options: dict[str, Any] = field(default_factory=dict)  # the kind's own keys
    name: str = ""  # defaults to the kind (v1: one service per kind, named by it)
    profiles: tuple[str, ...] = ()  # compose profiles (other targets ignore them)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.kind)

    @property
    def var(self) -> str:
        """The prefix of its connection variables: NAME upper-cased, '-' -> '_'."""
        return self.name.upper().replace("-", "_")

    def __getattr__(self, name: str) -> Any:  # svc.models, svc.context ... for templates
        try:
            return self.__dict__["options"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def exposed(self) -> bool:
        return self.host not in ("127.0.0.1", "::1", "localhost")

    @property
    def host_before_port(self) -> str:
        """The listen address as it is written before `:port` (OLLAMA_HOST=host:port): an IPv6
        address in brackets, as Go's net.SplitHostPort needs."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def local_url(self) -> str:
        """How a client on the same machine reaches the service: http://<address>:<port>."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "localhost") else "[::1]" if self.host == "::" else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Host:
    """One machine of `hosts:` (the fleet target): the instances it runs, at its address."""

    name: str
    address: str  # an IP literal (v4 or v6): every service on the host binds it
    services: tuple[str, ...]
    system: str  # its nixpkgs.hostPlatform
    gpu: bool  # an NVIDIA GPU: driver and CUDA builds for its services


@dataclass(frozen=True)
class Spec:
    version: int
    name: str
    description: str
    systems: tuple[str, ...]
    nixpkgs: str
    mirrors: Mirrors
    gpu: Gpu
    python: Python
    packages: tuple[str, ...]
    env: dict[str, str]
    services: dict[str, Service]  # name -> instance, in the order of services.KINDS, then the spec's
    targets: tuple[str, ...]
    source_sha256: str = ""
    # processes: where the services keep their state (None: the default, see procplan.DATA_DIR)
    data_dir: str | None = None
    # Problems worth telling that do not stop a render (an ending release): the CLI prints them.
    warnings: tuple[Any, ...] = ()
    # kubernetes.expose: service name -> ("ingress", host) | ("load_balancer", True)
    kubernetes_expose: dict[str, tuple[str, Any]] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)  # `hosts:` (empty: one machine)

    @property
    def branch(self) -> Branch:
        return BRANCH_TABLE[self.nixpkgs]

    def has(self, kind: str) -> bool:
        """Whether any service of `kind` is declared."""
        return any(s.kind == kind for s in self.services.values())

    def of_kind(self, kind: str) -> list[Service]:
        return [s for s in self.services.values() if s.kind == kind]

    def first(self, kind: str) -> Service | None:
        """The first service of `kind` (what a built-in client such as Open WebUI points at)."""
        return next((s for s in self.services.values() if s.kind == kind), None)

    @property
    def linux_systems(self) -> tuple[str, ...]:
        return tuple(s for s in self.systems if s.endswith("-linux"))
