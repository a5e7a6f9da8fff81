"""The `compose` target: compose.yaml (Compose Spec, for podman-compose), built as data and dumped.

GPU access goes through CDI (`devices: [nvidia.com/gpu=all]`), which podman understands
directly; compose's `deploy.resources` GPU reservations map poorly onto podman.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from .. import __version__, containers
from ..containers import INITDB_TARGET, Container, port_binding
from ..escape import compose_str
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates

INIT_SQL = "compose/postgres-init.sql"


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    plan = containers.plan(spec, peer=lambda name: name)  # compose services resolve by name
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    files: dict[str, str] = {}
    by_name = {ctr.name: ctr for ctr in plan}
    for ctr in plan:
        services[ctr.name] = _service(ctr, by_name)
        volumes.update({name: {} for name, _ in ctr.volumes})
        secrets.update({name: {"file": host_file} for name, host_file in ctr.secrets})
        if ctr.init_sql:
            files[init_sql_path(ctr)] = ctr.init_sql
    data: dict[str, Any] = {"name": spec.name, "services": services}
    if volumes:
        data["volumes"] = volumes
    if secrets:
        data["secrets"] = secrets
    header = (
        f"# Containers of \"{spec.name}\" for podman-compose (rendered by stackgen {__version__}).\n"
        "# Change stack.yaml and re-render instead of editing. Start: podman-compose up -d\n"
    )
    files["compose.yaml"] = header + _dump(data)
    return files


def init_sql_path(ctr: Container) -> str:
    """compose/postgres-init.sql for the instance named postgres (v1), else compose/<name>-init.sql."""
    return INIT_SQL if ctr.name == "postgres" else f"compose/{ctr.name}-init.sql"


def _service(ctr: Container, by_name: dict[str, Container]) -> dict[str, Any]:
    svc: dict[str, Any] = {"image": ctr.image}
    if ctr.entrypoint:
        svc["entrypoint"] = list(ctr.entrypoint)
    if ctr.build:
        context, containerfile = ctr.build  # relative to the spec's folder, where compose.yaml is by default
        svc["build"] = {"context": context, "dockerfile": containerfile}
        svc["pull_policy"] = "build"
    if ctr.profiles:
        svc["profiles"] = list(ctr.profiles)
    if ctr.command:
        svc["command"] = list(ctr.command)
    if ctr.env:
        svc["environment"] = dict(ctr.env)
    if ctr.ports or not ctr.oneshot:
        svc["ports"] = [port_binding(*p) for p in ctr.ports]
    mounts = [f"{name}:{path}" for name, path in ctr.volumes]
    mounts += [f"{host}:{path}:ro" for host, path in ctr.binds]
    if ctr.init_sql:
        mounts.append(f"./{init_sql_path(ctr)}:{INITDB_TARGET}:ro")
    if mounts:
        svc["volumes"] = mounts
    if ctr.gpu:
        svc["devices"] = [containers.GPU_DEVICE]
    if ctr.secrets:
        svc["secrets"] = [name for name, _ in ctr.secrets]  # mounted at /run/secrets/<name>
    if ctr.depends_on:
        svc["depends_on"] = {name: _dependency(ctr, by_name[name]) for name in ctr.depends_on}
    h = ctr.health
    if h is not None:
        svc["healthcheck"] = {
            "test": ["CMD-SHELL", h.command],
            "interval": h.interval,
            "timeout": h.timeout,
            "retries": h.retries,
            "start_period": h.start_period,
        }
    svc["restart"] = "no" if ctr.oneshot else "unless-stopped"
    return svc


def _dependency(ctr: Container, used: Container) -> dict[str, Any]:
    """Start after `used` is healthy (started, when it has no health check). A service behind a
    profile that `ctr` does not share may be absent: then it is waited for only when it runs."""
    dep: dict[str, Any] = {"condition": "service_healthy" if used.health is not None else "service_started"}
    if used.profiles and not set(used.profiles) & set(ctr.profiles):
        dep["required"] = False
    return dep


def _dump(data: dict) -> str:
    """compose.yaml's body: `data` with every string made interpolation-safe, as YAML.

    With libyaml, the node tree is built here and handed to its serializer: PyYAML's generic
    representer (type dispatch and alias bookkeeping per object) was half of the compose
    stage for 1,000 services. The nodes are exactly the ones SafeRepresenter makes for these
    types (str, int, bool, None, dict, list; block style); anything else takes yaml.dump."""
    dumper = getattr(yaml, "CSafeDumper", None)
    if dumper is not None:
        try:
            node = _node(data)
        except _Unsupported:
            pass
        else:
            return yaml.serialize(node, Dumper=dumper, allow_unicode=True, width=1 << 16)
    return yaml.dump(_interpolation_safe(data), Dumper=dumper or yaml.SafeDumper, sort_keys=False, allow_unicode=True, width=1 << 16)


class _Unsupported(Exception):
    pass


_TAG = "tag:yaml.org,2002:"


def _node(value: Any, *, key: bool = False) -> yaml.Node:
    """SafeRepresenter's node for `value` (strings interpolation-safe, except mapping keys)."""
    if isinstance(value, str):
        return yaml.ScalarNode(_TAG + "str", value if key else compose_str(value))
    if isinstance(value, bool):  # before int: bool is an int
        return yaml.ScalarNode(_TAG + "bool", "true" if value else "false")
    if isinstance(value, int):
        return yaml.ScalarNode(_TAG + "int", str(value))
    if value is None:
        return yaml.ScalarNode(_TAG + "null", "null")
    if isinstance(value, dict):
        return yaml.MappingNode(_TAG + "map", [(_node(k, key=True), _node(v)) for k, v in value.items()], flow_style=False)
    if isinstance(value, list):
        return yaml.SequenceNode(_TAG + "seq", [_node(v) for v in value], flow_style=False)
    raise _Unsupported(type(value).__name__)


def _interpolation_safe(value: Any) -> Any:
    """Every string as compose must write it so that the container sees it unchanged."""
    if isinstance(value, str):
        return compose_str(value)
    if isinstance(value, dict):
        return {k: _interpolation_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolation_safe(v) for v in value]
    return value
