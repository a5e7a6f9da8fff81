"""The `kubernetes` target: `k8s/`, a kustomize base built as data and dumped as YAML.

Every instance is one file `k8s/<name>.yaml`: a ClusterIP Service named after it (when it
listens), a StatefulSet (when it keeps state: one claim per volume) or a Deployment, its
one-shot jobs (Ollama's model pull), and what `kubernetes.expose` asks for (an Ingress or a
LoadBalancer Service `<name>-public`). The pods run the container plan (stackgen.containers),
the same images, commands, environment and health checks as compose, adjusted by each kind's
`Kind.kubernetes` (no host paths). Peers are reached by their Service's short name, which
resolves in whatever namespace the base is applied to.

Secrets are referenced by name and never rendered: the header of kustomization.yaml lists
the `kubectl create secret generic` command for each. They are mounted as files at
/run/secrets/<name>, where the images' `*_FILE` variables point, as on compose.
"""

from __future__ import annotations

import math
import re
import shlex
from typing import TYPE_CHECKING, Any

from .. import __version__, containers
from ..containers import INITDB_TARGET, SECRETS_DIR, Container, Health
from ..spec.kubernetes import INITDB_VOLUME, SECRETS_VOLUME, public_name
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates

DIR = "k8s"
GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's (and GPU operator's) resource
SECRET_MODE = 0o444  # the images drop root to their own user (postgres runs the init SQL as postgres)
INIT_KEY = "init.sql"


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    from ..services import KINDS

    plan = [KINDS[c.kind].kubernetes(spec, c) for c in containers.plan(spec, peer=lambda name: name)]
    per_file: dict[str, list[Container]] = {}
    for ctr in plan:  # a job belongs to the service it runs against (Kind.jobs depend on it)
        per_file.setdefault(ctr.depends_on[0] if ctr.oneshot else ctr.name, []).append(ctr)
    files: dict[str, str] = {}
    generators = []
    for name, group in per_file.items():
        docs: list[dict] = []
        for ctr in group:
            docs += _objects(spec, ctr)
            if ctr.init_sql:
                files[f"{DIR}/{ctr.name}-init.sql"] = ctr.init_sql
                generators.append({"name": f"{ctr.name}-init", "files": [f"{INIT_KEY}={ctr.name}-init.sql"]})
        files[f"{DIR}/{name}.yaml"] = _header(spec, f"{name}: what stackgen renders for services.{name}") + _dump_all(docs)
    kustomization: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"{name}.yaml" for name in per_file],
    }
    if generators:
        kustomization["configMapGenerator"] = generators
    files[f"{DIR}/kustomization.yaml"] = _kustomization_header(spec, plan) + _dump_all([kustomization])
    return files


# --- objects -----------------------------------------------------------------------------------


def _objects(spec: Spec, ctr: Container) -> list[dict]:
    from ..services import KINDS

    kind = KINDS[ctr.kind]
    labels = _labels(spec, ctr, kind)
    selector = {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}
    meta = {"name": ctr.name, "labels": labels}
    if ctr.oneshot:
        return [_job(spec, ctr, meta, labels)]
    out: list[dict] = []
    if ports := _ports(spec, ctr):
        out.append(_service(meta, selector, ports))
    pod = {"metadata": {"labels": labels}, "spec": _pod_spec(spec, ctr)}
    if ctr.volumes:  # state: each volume a claim of the pod's own, kept across restarts and re-creation
        claims = [_claim(_claim_name(ctr, vol), kind.storage) for vol, _ in ctr.volumes]
        out.append({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta,
            "spec": {
                "serviceName": ctr.name,
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": pod,
                "volumeClaimTemplates": claims,
            },
        })  # fmt: skip
    else:
        out.append({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": selector}, "template": pod},
        })  # fmt: skip
    out += _exposure(spec, ctr, meta, selector)
    return out


def _labels(spec: Spec, ctr: Container, kind) -> dict[str, str]:
    """Kubernetes' recommended labels: the program (the kind; the instance for app/container),
    the instance, its role, the stack, and who renders it."""
    generic = ctr.kind in ("app", "container")
    return {
        "app.kubernetes.io/name": ctr.name if generic else ctr.kind,
        "app.kubernetes.io/instance": ctr.name,
        "app.kubernetes.io/component": "model-pull" if ctr.oneshot else kind.component,
        "app.kubernetes.io/part-of": spec.name,
        "app.kubernetes.io/managed-by": "stackgen",
    }


def _ports(spec: Spec, ctr: Container) -> list[tuple[str, int]]:
    """(name, port) the pod listens on: the service's port inside its container (where the
    connection variables point: each Service port is the container port), then the others
    compose publishes (Qdrant's gRPC)."""
    from ..services import KINDS

    if ctr.oneshot:
        return []
    svc = spec.services[ctr.name]
    inner = KINDS[svc.kind].inner_port(svc)
    seen = dict.fromkeys(([inner] if inner else []) + [port for _, _, port in ctr.ports])
    return [(f"tcp-{port}", port) for port in seen]


def _service(meta: dict, selector: dict, ports: list[tuple[str, int]], name: str | None = None, kind: str = "ClusterIP") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**meta, "name": name or meta["name"]},
        "spec": {
            "type": kind,
            "selector": selector,
            "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in ports],
        },
    }


def _exposure(spec: Spec, ctr: Container, meta: dict, selector: dict) -> list[dict]:
    how = spec.kubernetes_expose.get(ctr.name)
    if how is None:
        return []
    main = _ports(spec, ctr)[:1]  # the service's own port (validation made sure there is one)
    if how[0] == "load_balancer":
        return [_service(meta, selector, main, name=public_name(ctr.name), kind="LoadBalancer")]
    (port_name, _), = main
    backend = {"service": {"name": ctr.name, "port": {"name": port_name}}}
    return [{
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {"rules": [{"host": how[1], "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]},
    }]  # fmt: skip


def _job(spec: Spec, ctr: Container, meta: dict, labels: dict) -> dict:
    pod = _pod_spec(spec, ctr)
    pod["restartPolicy"] = "OnFailure"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": 6,
            # A finished Job is removed after a while, so that applying the base again (after
            # models: changed) re-creates it: a Job's pod template cannot be changed in place.
            # Pulling a model that is already there costs a check, not a download.
            "ttlSecondsAfterFinished": 600,
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def _pod_spec(spec: Spec, ctr: Container) -> dict:
    main = _container(ctr, ctr.name, ctr.entrypoint, ctr.command, probes=not ctr.oneshot, ports=_ports(spec, ctr))
    if ctr.gpu:
        main["resources"] = {"limits": {GPU_RESOURCE: 1}}
    spec: dict[str, Any] = {"automountServiceAccountToken": False}  # no pod here talks to the Kubernetes API
    if ctr.fs_group is not None:
        spec["securityContext"] = {"fsGroup": ctr.fs_group}
    if ctr.init:
        spec["initContainers"] = [_container(ctr, name, command, (), probes=False) for name, command in ctr.init]
    spec["containers"] = [main]
    volumes = []
    if ctr.secrets:
        sources = [{"secret": {"name": name, "items": [{"key": name, "path": name}]}} for name, _ in ctr.secrets]
        volumes.append({"name": SECRETS_VOLUME, "projected": {"sources": sources, "defaultMode": SECRET_MODE}})
    if ctr.init_sql:
        items = [{"key": INIT_KEY, "path": INITDB_TARGET.rsplit("/", 1)[1]}]
        volumes.append({"name": INITDB_VOLUME, "configMap": {"name": f"{ctr.name}-init", "items": items}})
    if volumes:
        spec["volumes"] = volumes
    return spec


def _container(ctr: Container, name: str, command: tuple[str, ...], args: tuple[str, ...], probes: bool, ports=()) -> dict:
    out: dict[str, Any] = {"name": name, "image": ctr.image}
    if ports:
        out["ports"] = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports]
    if command:
        out["command"] = [_expansion_safe(w) for w in command]
    if args:
        out["args"] = [_expansion_safe(w) for w in args]
    if ctr.env:
        out["env"] = [{"name": k, "value": _expansion_safe(v)} for k, v in ctr.env.items()]
    mounts = [{"name": _claim_name(ctr, vol), "mountPath": path} for vol, path in ctr.volumes]
    if ctr.secrets:
        mounts.append({"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True})
    if ctr.init_sql:
        mounts.append({"name": INITDB_VOLUME, "mountPath": INITDB_TARGET.rsplit("/", 1)[0], "readOnly": True})
    if mounts:
        out["volumeMounts"] = mounts
    if probes and ctr.health is not None:
        out.update(_probes(ctr.health))
    return out


def _claim_name(ctr: Container, volume: str) -> str:
    """A claim template's name: the volume's name without the instance's (PVC <claim>-<pod>)."""
    return volume.removeprefix(f"{ctr.name}-")


def _claim(name: str, size: str) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    }


def _probes(h: Health) -> dict:
    """Readiness and liveness from the one health description (what compose's healthcheck
    runs), and a startup probe that gives the service its start period before either counts."""
    interval, timeout = _seconds(h.interval), _seconds(h.timeout)
    if h.probe and h.probe[0] == "http":
        action: dict = {"httpGet": {"path": h.probe[1], "port": h.probe[2]}}
    elif h.probe and h.probe[0] == "tcp":
        action = {"tcpSocket": {"port": h.probe[2]}}
    else:
        action = {"exec": {"command": ["/bin/sh", "-c", h.command]}}  # exec probes see no $(VAR) expansion
    timing = {"periodSeconds": interval, "timeoutSeconds": timeout, "failureThreshold": h.retries}
    startup = {"periodSeconds": interval, "timeoutSeconds": timeout, "failureThreshold": max(1, math.ceil(_seconds(h.start_period) / interval)) + h.retries}
    return {
        "startupProbe": {**action, **startup},
        "readinessProbe": {**action, **timing},
        "livenessProbe": {**action, **timing},
    }


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    if not match:
        raise AssertionError(f"health durations are whole seconds, not {duration!r}")
    return int(match.group(1))


def _expansion_safe(value: str) -> str:
    """`value` as Kubernetes must receive it in a container's command, args or env value so that
    the process sees it unchanged: the kubelet expands $(NAME) there and reads $$ as $."""
    return value.replace("$", "$$")


# --- files -------------------------------------------------------------------------------------


def _header(spec: Spec, what: str) -> str:
    return (
        f"# {what} (rendered by stackgen {__version__} for stack \"{spec.name}\").\n"
        "# Change stack.yaml and re-render instead of editing; adjust per cluster with a kustomize overlay.\n"
    )


def _kustomization_header(spec: Spec, plan: list[Container]) -> str:
    secrets = dict.fromkeys((name, host_file) for ctr in plan for name, host_file in ctr.secrets)
    lines = [
        f"# Kubernetes base of stack \"{spec.name}\" (rendered by stackgen {__version__}).",
        "# Change stack.yaml and re-render instead of editing; adjust per cluster with a kustomize overlay.",
        "# Apply: kubectl apply -k k8s/   (into the current namespace, or: kubectl apply -n NAMESPACE -k k8s/)",
    ]
    if secrets:
        lines.append("# Create the secrets first, in the same namespace (the files stay where they are; nothing is inlined here):")
        lines += [f"#   kubectl create secret generic {name} --from-file={shlex.quote(f'{name}={host_file}')}" for name, host_file in secrets]
    return "\n".join(lines) + "\n"


def _dump_all(docs: list[dict]) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all([_prune(d) for d in docs], Dumper=dumper, sort_keys=False, allow_unicode=True, width=1 << 16, explicit_start=True)


def _prune(value: Any) -> Any:
    """Drop keys whose value is None (a field left out)."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value
