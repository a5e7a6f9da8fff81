"""The `quadlet` target: Podman Quadlet units under quadlet/, built as data.

One `.container` per service, a `.volume` per state volume and one `.network` for the stack.
Copy the folder's files to ~/.config/containers/systemd/ (or /etc/containers/systemd/ for
root) and `systemctl --user daemon-reload`; systemd then knows `<stack>-<service>.service`.

`Notify=healthy` makes a unit "started" only once its healthcheck passes, so `After=` on it
means what compose's `condition: service_healthy` means.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import __version__, containers
from ..containers import INITDB_TARGET, Container, port_binding
from ..spec.model import Spec
from ..unitfile import EXEC_SECTIONS, START_TIMEOUT, Entry, Section, Words, health_entries, unit_value  # noqa: F401 - part of this target's interface

if TYPE_CHECKING:
    from ..render import Templates


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    stack = spec.name
    network = f"{stack}.network"
    files = {f"quadlet/{network}": _unit(stack, "the container network", [("Network", [("NetworkName", stack)])])}
    for ctr in containers.plan(spec, peer=lambda name: f"{stack}-{name}"):
        for name, _ in ctr.volumes:
            volume = f"{stack}-{name}"
            what = f"the {ctr.name} data volume" if name == f"{ctr.name}-data" else f"the {name} volume"
            files[f"quadlet/{volume}.volume"] = _unit(stack, what, [("Volume", [("VolumeName", volume)])])
        if ctr.init_sql:
            files[f"quadlet/{init_sql_name(stack, ctr)}"] = ctr.init_sql
        files[f"quadlet/{stack}-{ctr.name}.container"] = container_unit(stack, ctr)
    return files


def init_sql_name(stack: str, ctr: Container) -> str:
    return f"{stack}-{ctr.name}-init.sql"


def container_unit(stack: str, ctr: Container) -> str:
    """The `<stack>-<name>.container` unit of one planned container."""
    return _unit(stack, f"the {ctr.name} service", _container(stack, f"{stack}.network", ctr, init_sql_name(stack, ctr)))


def _container(stack: str, network: str, ctr: Container, init_sql: str) -> list[Section]:
    unit: list[Entry] = [("Description", f"{stack}: {ctr.name}")]
    for dep in ctr.depends_on:
        unit += [("Requires", f"{stack}-{dep}.service"), ("After", f"{stack}-{dep}.service")]
    c: list[Entry] = [
        ("ContainerName", f"{stack}-{ctr.name}"),
        ("Image", ctr.image),  # an app's `build:` is compose's; here the image is built (or pulled) beforehand
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
    if ctr.entrypoint:  # Quadlet takes the program; its arguments go before Exec='s
        c.append(("Entrypoint", ctr.entrypoint[0]))
    if ctr.entrypoint[1:] or ctr.command:
        c.append(("Exec", Words(ctr.entrypoint[1:] + ctr.command)))
    if ctr.health is not None:
        c += health_entries(ctr.health)
    if ctr.oneshot:  # done once it has run; systemd starts it again on the next boot
        service = [("Type", "oneshot"), ("RemainAfterExit", "yes"), ("TimeoutStartSec", START_TIMEOUT)]
    else:
        service = [("Restart", "on-failure"), ("TimeoutStartSec", START_TIMEOUT)]
    return [("Unit", unit), ("Container", c), ("Service", service), ("Install", [("WantedBy", "default.target")])]


def _unit(stack: str, what: str, sections: list[Section]) -> str:
    lines = [
        f"# Podman Quadlet unit: {what} of \"{stack}\" (rendered by stackgen {__version__}).",
        "# Change stack.yaml and re-render instead of editing. Copy quadlet/* to ~/.config/containers/systemd/.",
    ]
    for name, entries in sections:
        lines += ["", f"[{name}]"] + [f"{key}={unit_value(name, value)}" for key, value in entries]
    return "\n".join(lines) + "\n"
