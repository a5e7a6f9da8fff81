"""The `compose` target: compose.yaml (Compose Spec, for podman-compose), built as data and dumped.

GPU access goes through CDI (`devices: [nvidia.com/gpu=all]`), which podman understands
directly; compose's `deploy.resources` GPU reservations map poorly onto podman.
"""

from __future__ import annotations

from typing import Any

import yaml

from .. import __version__, containers
from ..containers import Container
from ..escape import compose_str
from ..render import Templates
from ..spec.model import Spec

INIT_SQL = "compose/postgres-init.sql"
INITDB_TARGET = "/docker-entrypoint-initdb.d/10-stackgen.sql"


def render(spec: Spec, tpl: Templates) -> dict[str, str]:
    plan = containers.plan(spec, peer=lambda kind: kind)  # compose services resolve by name
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    files: dict[str, str] = {}
    for ctr in plan:
        services[ctr.kind] = _service(ctr)
        volumes.update({name: {} for name, _ in ctr.volumes})
        secrets.update({name: {"file": host_file} for name, host_file in ctr.secrets})
        if ctr.init_sql:
            files[INIT_SQL] = ctr.init_sql
    data: dict[str, Any] = {"name": spec.name, "services": services}
    if volumes:
        data["volumes"] = volumes
    if secrets:
        data["secrets"] = secrets
    header = (
        f"# Containers of \"{spec.name}\" for podman-compose (rendered by stackgen {__version__}).\n"
        "# Change stack.yaml and re-render instead of editing. Start: podman-compose up -d\n"
    )
    body = yaml.safe_dump(_interpolation_safe(data), sort_keys=False, allow_unicode=True, width=1 << 16)
    files["compose.yaml"] = header + body
    return files


def port_binding(host: str, host_port: int, container_port: int) -> str:
    host = f"[{host}]" if ":" in host else host  # IPv6 addresses are bracketed
    return f"{host}:{host_port}:{container_port}"


def _service(ctr: Container) -> dict[str, Any]:
    svc: dict[str, Any] = {"image": ctr.image}
    if ctr.command:
        svc["command"] = list(ctr.command)
    if ctr.env:
        svc["environment"] = dict(ctr.env)
    svc["ports"] = [port_binding(*p) for p in ctr.ports]
    mounts = [f"{name}:{path}" for name, path in ctr.volumes]
    mounts += [f"{host}:{path}:ro" for host, path in ctr.binds]
    if ctr.init_sql:
        mounts.append(f"./{INIT_SQL}:{INITDB_TARGET}:ro")
    if mounts:
        svc["volumes"] = mounts
    if ctr.gpu:
        svc["devices"] = [containers.GPU_DEVICE]
    if ctr.secrets:
        svc["secrets"] = [name for name, _ in ctr.secrets]  # mounted at /run/secrets/<name>
    if ctr.depends_on:
        svc["depends_on"] = {kind: {"condition": "service_healthy"} for kind in ctr.depends_on}
    h = ctr.health
    svc["healthcheck"] = {
        "test": ["CMD-SHELL", h.command],
        "interval": h.interval,
        "timeout": h.timeout,
        "retries": h.retries,
        "start_period": h.start_period,
    }
    svc["restart"] = "unless-stopped"
    return svc


def _interpolation_safe(value: Any) -> Any:
    """Every string as compose must write it so that the container sees it unchanged."""
    if isinstance(value, str):
        return compose_str(value)
    if isinstance(value, dict):
        return {k: _interpolation_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolation_safe(v) for v in value]
    return value
