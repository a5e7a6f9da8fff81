"""What every service kind is: the `Kind` a module under services/ defines, once.

A kind owns its typed options and their defaults (`fields`, `defaults`, `required`), the
checks that need the whole service, its secret files, the ports it takes on the host, its
health description, how a client connects to it (`connection`), and what it contributes to
each target (`container`: the container plan entry; the NixOS side asks it too). Targets
iterate over the spec's instances and ask `KINDS[svc.kind]`; they hold no table of kinds.

Nothing here imports a target, Jinja2 or YAML: validation loads these modules.
"""

from __future__ import annotations

from ..records import dataclass  # as dataclasses', without exec() or importing dataclasses
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..containers import Container, Health
    from ..procplan import Probe, Process
    from .health import Check
    from ..spec.checks import Checker, Collector
    from ..spec.model import Service, Spec

# How a target names the address another service is reached at: the used service -> host.
Resolve = Callable[["Service"], str]


@dataclass(frozen=True)
class Endpoint:
    """Where a client reaches a service on one target: host (a name or an address) and port."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"


class Kind:
    """One service kind. Subclasses set the class attributes and override what differs."""

    name: str = ""
    port: int | None = None  # the default host port (None: the service publishes none unless given)
    container_port: int | None = None  # where the service listens inside its container
    gpu_capable: bool = False
    fields: dict[str, "Checker"] = {}
    defaults: dict[str, Any] = {}
    required: tuple[str, ...] = ()
    # option -> (example path, what the file holds): secrets are files, never values
    secrets: dict[str, str] = {}
    # option -> the connection variable suffix its path is passed as (<NAME>_PASSWORD_FILE)
    secret_variables: dict[str, str] = {}
    # the conventional connection variables, set when a client uses exactly one of this kind
    conventional: tuple[str, ...] = ()
    # the data volume's mount point in the container (None: no state)
    data: str | None = None
    # runs as a container image on the container targets (compose, quadlet)
    native_only: bool = False
    # Kubernetes: app.kubernetes.io/component, and the size each volume's claim asks for
    # (a StatefulSet's claims cannot grow by re-applying: resize the PVC where the class allows)
    component: str = "server"
    storage: str = "1Gi"

    # --- validation ---------------------------------------------------------------------------

    def required_hint(self, key: str) -> str | None:
        return None

    gpu_default = True  # gpu defaults to true where the kind can use one and gpu.vendor is nvidia
    takes_uses = False  # `uses:` (only the user's own programs name what they use)
    host_network_capable = False
    # Runs as a native program (the processes target); a `container` needs a container engine.
    native = True
    container_auth: str | None = None  # the secret that makes publishing beyond loopback safe

    def check(self, c: "Collector", path: tuple, name: str, values: dict[str, Any], targets: tuple[str, ...]) -> None:
        """Checks across this service's values (its options, and port and image) and the spec's
        targets, after each value passed its own check."""

    def native_on_home(self, svc: "Service") -> bool:
        """Runs natively (a systemd user service, not a container) on home-manager: its clients
        in containers must share the host's network to reach it."""
        return False

    def host_ports(self, svc: "Service") -> list[tuple[str, int]]:
        """(option, port) pairs the service takes on its host; clash-checked across instances."""
        return [("port", svc.port)] if svc.port is not None else []

    # --- wiring -------------------------------------------------------------------------------

    def inner_port(self, svc: "Service") -> int | None:
        """The port the service listens on inside its container."""
        return self.container_port

    def url(self, svc: "Service", at: Endpoint) -> str | None:
        """`<NAME>_URL`: how a client reaches the service at `at` (None: it takes no clients)."""
        return f"http://{at.authority}"

    def conventional_env(self, svc: "Service", at: Endpoint) -> dict[str, str]:
        """The conventional variables (DATABASE_URL ...) for a client of this one service."""
        return {}

    # --- targets ------------------------------------------------------------------------------

    def container(self, spec: "Spec", svc: "Service", peer: Callable[[str], str]) -> "Container":
        raise NotImplementedError(f"{self.name} has no container")

    def jobs(self, spec: "Spec", svc: "Service", peer: Callable[[str], str]) -> list["Container"]:
        """One-shot containers that run after the service is healthy (model pulls)."""
        return []

    def health(self, svc: "Service") -> "Check | None":
        """The service's health check, described once (None: none); services/health.py turns it
        into each target's form: `container_health`, `process_probe`, Kubernetes' probes."""
        return None

    def container_health(self, svc: "Service", host: str = "127.0.0.1", port: int | None = None) -> "Health | None":
        """The health check inside the service's container, at `host`:`port` (default: loopback
        and its container port), its secrets at their mounts."""
        from ..containers import secret, secret_path
        from .health import in_container

        check = self.health(svc)
        if check is None:
            return None
        return in_container(check, port or self.inner_port(svc), lambda option: secret_path(secret(svc, option)[0]), host)

    def kubernetes(self, spec: "Spec", ctr: "Container") -> "Container":
        """The container plan entry (`container` or one of `jobs`) as a Kubernetes pod runs it:
        what differs from compose (no host paths, a data folder below the volume's root,
        a wait before a job). Default: the same."""
        return ctr

    def job_names(self, svc: "Service") -> list[str]:
        """The names `jobs` takes (they must not clash with a service's name)."""
        return []

    # --- processes (the `processes` target: native processes under process-compose) --------

    def process(self, spec: "Spec", svc: "Service") -> "Process":
        raise NotImplementedError(f"{self.name} has no native process")

    def process_probe(self, spec: "Spec", svc: "Service") -> "Probe | None":
        """The readiness probe of its process, from `health` at the address a local client uses
        (None: process-compose only sees it start)."""
        from ..escape import sh_quote
        from .health import on_host
        from .wiring import native_endpoint

        check = self.health(svc)
        return on_host(check, native_endpoint(svc), lambda option: sh_quote(svc.options[option])) if check else None

    def process_sockets(self, svc: "Service") -> tuple[str, ...]:
        """The Unix sockets its process creates, relative to the stack's state folder (checked
        against sun_path: procplan.socket_checks and services.sh)."""
        return ()

    def process_jobs(self, spec: "Spec", svc: "Service") -> list["Process"]:
        """One-shot processes that run after the service is healthy (model pulls)."""
        return []
