"""`kubernetes:` (exposure beyond the cluster) and what the `kubernetes` target cannot run.

```yaml
kubernetes:
  expose:
    open-webui: {ingress: chat.example.com}   # an Ingress for this host name, to the service's port
    qdrant: {load_balancer: true}              # a LoadBalancer Service <name>-public
```

Without `expose:` nothing is reachable from outside the cluster (ClusterIP Services only).
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import did_you_mean
from . import checks as ck
from .checks import INVALID, Collector, dotted
from .model import Service

TARGET = "kubernetes"
# A StatefulSet's pods carry the label controller-revision-hash=<name>-<10 characters>, and a
# label value has at most 63: instance names stay at 52 (DNS-1035 labels, which Services need:
# no trailing '-').
MAX_NAME = 52
DNS_1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"  # compiled (by re) at first use: few specs have Kubernetes names
# Volumes every pod may have beside its claims (named after the volume: data, models, ...).
SECRETS_VOLUME, INITDB_VOLUME = "secrets", "initdb"
POD_VOLUMES = {SECRETS_VOLUME: "the mounted secret files", INITDB_VOLUME: "postgres' init SQL"}
# An Ingress host: a DNS name, optionally with a leading "*." wildcard (networking/v1 rules).
INGRESS_HOST = ck.string(
    pattern=r"(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+",
    describe="a DNS host name such as chat.example.com (lowercase, at least two labels)",
    max_len=253,
)


def public_name(name: str) -> str:
    """The LoadBalancer Service that `expose: {load_balancer: true}` adds beside the ClusterIP one."""
    return f"{name}-public"


def section(c: Collector, value: Any, targets: Any) -> dict[str, tuple[str, Any]]:
    """`kubernetes:` -> {service name: ("ingress", host) | ("load_balancer", True)} (unchecked names)."""
    path = ("kubernetes",)
    if value is None:
        return {}
    data = ck.mapping(c, path, value, ("expose",))
    if data is INVALID:
        return {}
    if targets is not INVALID and TARGET not in targets:
        c.error(path, "kubernetes: is set but kubernetes is not in targets", "add kubernetes to targets, or drop the kubernetes section", at_key=True)
    raw = data.get("expose")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        c.error(path + ("expose",), f"kubernetes.expose must be a mapping of service name: {{ingress: HOST}} or {{load_balancer: true}}, not {ck.kind_of(raw)}")
        return {}
    out = {}
    for name, how in raw.items():
        got = _exposure(c, path + ("expose", name), how)
        if got is not INVALID:
            out[name] = got
    return out


def _exposure(c: Collector, path: tuple, value: Any) -> Any:
    choice = ck.one_of(c, path, value, ("ingress", "load_balancer"), "for example {ingress: chat.example.com} or {load_balancer: true}")
    if choice is INVALID:
        return INVALID
    key, raw = choice
    if key == "load_balancer":
        if raw is not True:
            return c.error(path + (key,), f"{dotted(path + (key,))} must be true", "drop the entry to keep the service inside the cluster")
        return ("load_balancer", True)
    got = INGRESS_HOST(c, path + (key,), raw)
    return INVALID if got is INVALID else ("ingress", got)


def checks(c: Collector, services: dict[str, Service], expose: dict[str, tuple[str, Any]], images_checked: bool) -> None:
    """What the kubernetes target needs of the instances, and that `expose:` names services
    that can be reached from outside safely. The pods run the container targets' images:
    their checks (postgres extensions in the default image) apply, once."""
    from ..services import KINDS, Endpoint

    for name, svc in services.items():
        kind = KINDS[svc.kind]
        if not images_checked and hasattr(kind, "container_checks"):
            kind.container_checks(c, svc)
        if len(name) > MAX_NAME or not re.fullmatch(DNS_1035, name):
            c.error(
                ("services", name),
                f"services.{name} cannot run on kubernetes: its name must end with a letter or digit and have at most {MAX_NAME} characters (a StatefulSet's pod labels)",
                "rename the service, or drop kubernetes from targets",
                at_key=True,
            )
        for volume, _ in svc.options.get("volumes", ()):
            if volume in POD_VOLUMES:
                c.error(
                    ("services", name, "volumes", volume),
                    f"services.{name}.volumes.{volume} cannot run on kubernetes: the pod's volume {volume!r} is stackgen's ({POD_VOLUMES[volume]})",
                    "rename the volume",
                    at_key=True,
                )
        if svc.kind == "app" and not svc.image:
            c.error(
                ("services", name),
                f"services.{name} cannot run on kubernetes: an app needs 'image' there (a cluster cannot build it)",
                f"push the image to a registry the cluster pulls from and set services.{name}.image, or drop kubernetes from targets",
                at_key=True,
            )
    for name, (how, _) in expose.items():
        path = ("kubernetes", "expose", name)
        svc = services.get(name)
        if svc is None:
            c.error(path, f"kubernetes.expose.{name}: there is no services.{name}", did_you_mean(name, list(services)) or "declared: " + ", ".join(services), at_key=True)
            continue
        kind = KINDS[svc.kind]
        port = kind.inner_port(svc)
        if port is None:
            c.error(path, f"kubernetes.expose.{name}: services.{name} listens on no port", f"set services.{name}.port", at_key=True)
            continue
        url = kind.url(svc, Endpoint(name, port))
        if how == "ingress" and not (url or "").startswith("http://"):
            c.error(path + ("ingress",), f"kubernetes.expose.{name}.ingress: services.{name} does not speak HTTP, which an Ingress routes", "use {load_balancer: true}", at_key=True)
        if how == "load_balancer" and public_name(name) in services:
            c.error(path + ("load_balancer",), f"kubernetes.expose.{name}.load_balancer: its Service {public_name(name)} would take the name of services.{public_name(name)}", f"rename services.{public_name(name)}", at_key=True)
        auth = kind.container_auth
        if auth and not svc.options.get(auth):
            c.error(path, f"kubernetes.expose.{name}: services.{name} would accept anyone from outside the cluster without {auth}", f"set services.{name}.{auth}: {kind.secrets[auth]}, or drop the entry", at_key=True)

