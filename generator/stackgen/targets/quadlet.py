"""The `quadlet` target: Podman Quadlet units under quadlet/, built as data.

One `.container` per service, a `.volume` per state volume and one `.network` for the stack.
Copy the folder's files to ~/.config/containers/systemd/ (or /etc/containers/systemd/ for
root) and `systemctl --user daemon-reload`; systemd then knows `<stack>-<service>.service`.

`Notify=healthy` makes a unit "started" only once its healthcheck passes, so `After=` on it
means what compose's `condition: service_healthy` means.
"""

from __future__ import annotations

from .. import __version__, containers
from ..containers import Container, Health
from ..escape import systemd_raw, systemd_specifiers, systemd_words
from ..render import Templates
from ..spec.model import Spec
from .compose import INITDB_TARGET, port_binding


class Words(tuple):
    """A value that Quadlet splits into words (Exec=, Environment=): each word is quoted."""


Entry = tuple[str, "str | Words"]  # (key, the value as the consumer must see it: not escaped yet)
Section = tuple[str, list[Entry]]  # (group name, entries)

# Sections whose values Quadlet copies into the ExecStart= of the service it generates
# (`podman run`, `podman network create`, `podman volume create`): `$` expands there too.
EXEC_SECTIONS = ("Container", "Network", "Volume")


def render(spec: Spec, tpl: Templates) -> dict[str, str]:
    stack = spec.name
    network = f"{stack}.network"
    files = {f"quadlet/{network}": _unit(stack, "the container network", [("Network", [("NetworkName", stack)])])}
    for ctr in containers.plan(spec, peer=lambda kind: f"{stack}-{kind}"):
        for name, _ in ctr.volumes:
            volume = f"{stack}-{name}"
            files[f"quadlet/{volume}.volume"] = _unit(stack, f"the {ctr.kind} data volume", [("Volume", [("VolumeName", volume)])])
        if ctr.init_sql:
            files[f"quadlet/{init_sql_name(stack, ctr)}"] = ctr.init_sql
        files[f"quadlet/{stack}-{ctr.kind}.container"] = container_unit(stack, ctr)
    return files


def init_sql_name(stack: str, ctr: Container) -> str:
    return f"{stack}-{ctr.kind}-init.sql"


def container_unit(stack: str, ctr: Container) -> str:
    """The `<stack>-<kind>.container` unit of one planned container."""
    return _unit(stack, f"the {ctr.kind} service", _container(stack, f"{stack}.network", ctr, init_sql_name(stack, ctr)))


def _container(stack: str, network: str, ctr: Container, init_sql: str) -> list[Section]:
    unit: list[Entry] = [("Description", f"{stack}: {ctr.kind}")]
    for dep in ctr.depends_on:
        unit += [("Requires", f"{stack}-{dep}.service"), ("After", f"{stack}-{dep}.service")]
    c: list[Entry] = [
        ("ContainerName", f"{stack}-{ctr.kind}"),
        ("Image", ctr.image),
        ("Network", network),
    ]
    c += [("PublishPort", port_binding(*p)) for p in ctr.ports]
    c += [("Volume", f"{stack}-{name}.volume:{path}") for name, path in ctr.volumes]
    c += [("Volume", f"{host}:{path}:ro") for host, path in ctr.binds]
    c += [("Volume", f"{host_file}:{containers.secret_path(name)}:ro") for name, host_file in ctr.secrets]
    if ctr.init_sql:  # a relative source is resolved against the unit file's folder
        c.append(("Volume", f"./{init_sql}:{INITDB_TARGET}:ro"))
    if ctr.gpu:
        c.append(("AddDevice", containers.GPU_DEVICE))
    c += [("Environment", Words([f"{k}={v}"])) for k, v in ctr.env.items()]
    if ctr.command:
        c.append(("Exec", Words(ctr.command)))
    c += health_entries(ctr.health)
    service = [("Restart", "on-failure"), ("TimeoutStartSec", START_TIMEOUT)]
    return [("Unit", unit), ("Container", c), ("Service", service), ("Install", [("WantedBy", "default.target")])]


# The first start pulls the image, and Notify=healthy waits for the healthcheck too;
# systemd's default start timeout is 90 s.
START_TIMEOUT = "900"


def health_entries(h: Health) -> list[tuple[str, str]]:
    """[Container] keys for the healthcheck (not escaped yet); Notify=healthy: the unit is
    started once it passes."""
    return [
        ("HealthCmd", h.command),
        ("HealthInterval", h.interval),
        ("HealthTimeout", h.timeout),
        ("HealthRetries", str(h.retries)),
        ("HealthStartPeriod", h.start_period),
        ("Notify", "healthy"),
    ]


def _unit(stack: str, what: str, sections: list[Section]) -> str:
    lines = [
        f"# Podman Quadlet unit: {what} of \"{stack}\" (rendered by stackgen {__version__}).",
        "# Change stack.yaml and re-render instead of editing. Copy quadlet/* to ~/.config/containers/systemd/.",
    ]
    for name, entries in sections:
        lines += ["", f"[{name}]"] + [f"{key}={unit_value(name, value)}" for key, value in entries]
    return "\n".join(lines) + "\n"


def unit_value(section: str, value: "str | Words") -> str:
    """Every value of a rendered unit goes through here: escaped for what reads that section."""
    if isinstance(value, Words):
        return systemd_words(value)
    return systemd_raw(value) if section in EXEC_SECTIONS else systemd_specifiers(value)
