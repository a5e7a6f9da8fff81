"""`services:`: every instance, its kind, its options (each kind's own schema, from
stackgen.services), and the checks across instances: ports, volumes, `uses:` and what each
target can run."""

from __future__ import annotations

from typing import Any

from ..errors import did_you_mean
from . import checks as ck
from .checks import INVALID, Collector, dotted
from .model import Gpu, Service

COMMON_KEYS = ("kind", "port", "host", "gpu", "image", "profiles")
# Targets that run services in containers (home-manager through its Quadlet module).
CONTAINER_TARGETS = {"compose", "quadlet", "home-manager"}


def services(c: Collector, value: Any, gpu: Gpu, targets: tuple[str, ...]) -> dict[str, Service]:
    from ..services import BUILTIN, KINDS

    path = ("services",)
    data = value if isinstance(value, dict) else ck.mapping(c, path, value, ())  # None: {}; else an error
    if data is INVALID or not data:
        return {}
    out: list[Service] = []
    for name, raw in data.items():
        spath = path + (name,)
        if not isinstance(name, str) or not ck.NAME_RE.fullmatch(name):
            c.error(spath, f"service name {name!r} is not a valid name", "use lowercase letters, digits and '-', starting with a letter, at most 63", at_key=True)
            continue
        kind = _kind(c, spath, name, raw, BUILTIN, KINDS)
        if kind is None:
            continue
        svc = _instance(c, spath, name, KINDS[kind], raw, gpu, targets)
        if svc is not None:
            out.append(svc)
    order = {k: i for i, k in enumerate(KINDS)}
    out.sort(key=lambda s: order[s.kind])  # stable: the spec's order within a kind
    found = {s.name: s for s in out}
    _uses(c, found, [n for n in data if isinstance(n, str)])
    _variables(c, found, targets)
    _ports(c, found)
    _job_names(c, found)
    _single_instance(c, found, targets)
    _home_manager_gaps(c, found, targets)
    return found


# Kinds whose module on a target runs one server (nixpkgs' services.ollama, postgresql, qdrant,
# open-webui; home-manager's services.ollama, and the one stackgen.* secret option and init
# script the home module keeps per kind). llama.cpp and redis have no limit on NixOS (extra
# llama-servers get units of their own, redis has services.redis.servers.<name>).
SINGLE_INSTANCE = {
    "nixos": {
        "ollama": "nixpkgs' services.ollama runs one server",
        "postgres": "nixpkgs' services.postgresql runs one cluster (give it more databases instead)",
        "qdrant": "nixpkgs' services.qdrant runs one server",
        "open-webui": "nixpkgs' services.open-webui runs one server",
    },
    "home-manager": {
        "ollama": "home-manager's services.ollama runs one server",
        "postgres": "the home module has one stackgen.postgres.passwordFile and one init script (give it more databases instead)",
        "redis": "the home module has one stackgen.redis.passwordFile",
        "qdrant": "the home module has one stackgen.qdrant.environmentFile",
        "open-webui": "the home module has one stackgen.openWebui.environmentFile",
    },
}


def _home_manager_gaps(c: Collector, found: dict[str, Service], targets: tuple[str, ...]) -> None:
    """A container (or an app run from its image) that uses a service home-manager runs natively
    (Ollama, an app run from `command:`) shares the host's network to reach it on the address it
    listens on, loopback by default. There its own port would not be published on its `host:`
    but listen wherever the image binds (often every address), so one that publishes a port is
    refused rather than exposed."""
    from ..services import KINDS

    if "home-manager" not in targets:
        return
    for svc in found.values():
        if svc.kind not in ("app", "container") or KINDS[svc.kind].native_on_home(svc) or svc.port is None:
            continue
        native = [n for n in svc.options.get("uses", ()) if n in found and KINDS[found[n].kind].native_on_home(found[n])]
        if native:
            i = svc.options["uses"].index(native[0])
            c.error(
                ("services", svc.name, "uses", i),
                f"services.{svc.name} cannot use services.{native[0]} on home-manager: that runs natively there, so this container would share the host's network, "
                f"where its port {svc.port} would listen wherever the image binds instead of being published on {svc.host}",
                f"run it natively with command: (kind: app), drop port: from services.{svc.name}, or drop home-manager from targets",
            )


def _single_instance(c: Collector, found: dict[str, Service], targets: tuple[str, ...]) -> None:
    """A second instance of a kind whose module on a target runs one server is refused there."""
    for target in (t for t in targets if t in SINGLE_INSTANCE):
        seen: dict[str, str] = {}
        for svc in found.values():
            why = SINGLE_INSTANCE[target].get(svc.kind)
            if why and svc.kind in seen:
                c.error(
                    ("services", svc.name),
                    f"services.{svc.name}: a second {svc.kind} (after services.{seen[svc.kind]}) cannot run on {target}: {why}",
                    f"run it as kind: container with the image you need, or drop {target} from targets",
                    at_key=True,
                )
            seen.setdefault(svc.kind, svc.name)


def _variables(c: Collector, found: dict[str, Service], targets: tuple[str, ...]) -> None:
    """The connection variables a client receives are unambiguous and leave its own env alone;
    so are those the dev shell exports for every declared service."""
    from ..services.wiring import names

    for svc in found.values():
        used = [found[n] for n in svc.options.get("uses", ()) if n in found]
        _one_client(c, ("services", svc.name, "uses"), names(used), svc.options.get("env", {}), f"services.{svc.name}")
    if "devshell" in targets:
        _one_client(c, ("services",), names(list(found.values())), {}, "the dev shell")


def _one_client(c: Collector, path: tuple, pairs: list[tuple[str, str]], env: dict, who: str) -> None:
    source: dict[str, str] = {}
    for var, name in dict.fromkeys(pairs):
        if source.setdefault(var, name) != name:
            c.error(path, f"{who} would get {var} from both services.{source[var]} and services.{name}", "rename one of the two services", at_key=path == ("services",))
        elif var in env:
            c.error(path[:-1] + ("env", var), f"{path and dotted(path[:-1])}.env.{var} is set by uses: {name}", f"drop it from env, or read {var} as uses sets it", at_key=True)


def _kind(c: Collector, path: tuple, name: str, raw: Any, builtin: tuple, kinds: dict) -> str | None:
    if isinstance(raw, dict) and "kind" in raw:
        got = ck.enum(kinds)(c, path + ("kind",), raw["kind"])
        return None if got is INVALID else got
    if name in builtin:
        return name
    c.error(
        path,
        f"services.{name} needs 'kind:' ('{name}' is not a built-in kind)",
        did_you_mean(name, list(builtin))
        or "set kind: app (your program), container (any image), or one of " + ", ".join(builtin),
        at_key=True,
    )
    return None


def _field(c: Collector, data: dict, key: str, check: ck.Checker, default: Any, path: tuple) -> Any:
    if key not in data or (data[key] is None and default is not None):
        return default
    return check(c, path + (key,), data[key])


def _instance(c: Collector, spath: tuple, name: str, kind, raw: Any, gpu: Gpu, targets: tuple[str, ...]) -> Service | None:
    fields = kind.fields
    raw = ck.mapping(c, spath, raw, COMMON_KEYS + tuple(fields), lambda key: _inline_secret(name, kind, key))
    if raw is INVALID:
        return None
    for key in kind.required:
        if key not in raw:
            c.error(spath, f"services.{name} needs '{key}'", kind.required_hint(key), at_key=True)
    port = _field(c, raw, "port", ck.port, kind.port, spath)
    host = _field(c, raw, "host", ck.host, "127.0.0.1", spath)
    image = _field(c, raw, "image", ck.IMAGE, None, spath)
    profiles = _field(c, raw, "profiles", ck.listof(ck.NAME), (), spath)
    want_gpu = _field(c, raw, "gpu", ck.boolean, None, spath)
    if want_gpu is True and not kind.gpu_capable:
        c.error(spath + ("gpu",), f"services.{name} cannot use a GPU")
    elif want_gpu is True and not gpu.nvidia:
        c.error(spath + ("gpu",), f"services.{name}.gpu is true but gpu.vendor is none", "set gpu.vendor: nvidia, or remove gpu: true")
    if want_gpu is None or want_gpu is INVALID:
        want_gpu = kind.gpu_capable and kind.gpu_default and gpu.nvidia
    options = dict(kind.defaults)
    for key, check in fields.items():
        if key == "env":
            options[key] = ck.env_vars(c, spath + (key,), raw.get(key))
        elif key in raw:
            options[key] = _field(c, raw, key, check, None, spath)
    values = (port, host, image, profiles)
    if INVALID in values or INVALID in options.values() or any(k not in raw for k in kind.required):
        return None
    kind.check(c, spath, name, {**options, "port": port, "image": image}, targets)
    return Service(kind=kind.name, port=port, host=host, gpu=bool(want_gpu), image=image, options=options, name=name, profiles=tuple(profiles))


def _inline_secret(name: str, kind, key: str) -> tuple[str, str] | None:
    if key.lower() not in ck.INLINE_SECRETS:
        return None
    message = f"inline secret '{key}' in services.{name}: secrets are never written into the spec"
    if not kind.secrets:
        return message, f"services.{name} takes no secret; keep it listening on 127.0.0.1"
    file_key, example = next(iter(kind.secrets.items()))
    return message, f"put it in a file and write {file_key}: {example}"


def _uses(c: Collector, found: dict[str, Service], declared: list[str]) -> None:
    """Each `uses:` names another declared service, and no service starts after itself."""
    graph: dict[str, list[str]] = {}
    for svc in found.values():
        edges = graph.setdefault(svc.name, [])
        for i, used in enumerate(svc.options.get("uses", ())):
            upath = ("services", svc.name, "uses", i)
            if used == svc.name:
                c.error(upath, f"services.{svc.name}.uses names {svc.name} itself", "a service cannot use itself: remove it from uses")
            elif used not in declared:
                c.error(upath, f"{dotted(upath)} {used!r} is not a declared service", did_you_mean(used, declared) or "declared: " + ", ".join(declared))
            elif used in found:
                edges.append(used)
    for cycle in _cycles(graph):
        first = cycle[0]
        c.error(
            ("services", first, "uses", found[first].options["uses"].index(cycle[1])),
            f"services.{first}.uses makes a cycle: {' -> '.join(cycle)}",
            "a service cannot start after itself: drop one of these uses",
        )


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected part of the graph (iterative DFS: depth is unbounded)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []
    for root in graph:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            edges = graph.get(node, [])
            if i == len(edges):
                stack.pop()
                path.pop()
                state[node] = 2
                continue
            stack[-1] = (node, i + 1)
            nxt = edges[i]
            if state.get(nxt) == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, 0))
                path.append(nxt)
    return found


def _job_names(c: Collector, found: dict[str, Service]) -> None:
    """A kind's one-shot jobs (Ollama's model pull) are named after their service; no service may take that name."""
    from ..services import KINDS

    for svc in found.values():
        for job in KINDS[svc.kind].job_names(svc):
            if job in found:
                c.error(("services", job), f"services.{job} takes the name of the job that pulls the models of services.{svc.name}", f"rename services.{job}", at_key=True)


def _ports(c: Collector, found: dict[str, Service]) -> None:
    """No two services take the same port on overlapping addresses."""
    from ..services import KINDS

    taken: dict[int, list[tuple[str, str]]] = {}
    for svc in found.values():
        for key, number in KINDS[svc.kind].host_ports(svc):
            for other, other_host in taken.get(number, []):
                if _hosts_overlap(svc.host, other_host):
                    _port_clash(c, svc, key, number, other)
                    break
            taken.setdefault(number, []).append((f"services.{svc.name}" if key == "port" else f"services.{svc.name}.{key}", svc.host))


def _port_clash(c: Collector, svc: Service, key: str, number: int, other: str) -> None:
    """Say which port clashed and which setting moves it; a defaulted port is named as one."""
    path = ("services", svc.name, key)
    what = f"services.{svc.name}.{key} {number}"
    if c.raw(path) is None:  # not written in the spec: the kind's default
        label = "port" if key == "port" else f"{key.removesuffix('_port')} port"
        what += f" (the default {label} of {svc.kind})"
        hint = f"set services.{svc.name}.{key} to a free port, or move {other} to another port"
    else:
        hint = f"give services.{svc.name}.{key} or {other} another port"
    c.error(path, f"{what} is already used by {other}", hint)


def _hosts_overlap(a: str, b: str) -> bool:
    wildcard = ("0.0.0.0", "::")
    a, b = ("127.0.0.1" if h == "localhost" else h for h in (a, b))
    return a == b or a in wildcard or b in wildcard


def container_checks(c: Collector, services: dict[str, Service], native_ollama: bool) -> None:
    """Checks that only matter when the services run as containers (compose, quadlet, home-manager;
    home-manager alone runs Ollama natively)."""
    from ..services import KINDS

    volumes: dict[str, str] = {}
    for name, svc in services.items():
        kind = KINDS[svc.kind]
        if "%" in svc.host and svc.kind == "ollama" and native_ollama:
            # home-manager writes the host both into the user unit's Environment= (where `%`
            # must be doubled) and into the model-pull script (where it must not be)
            c.error(
                ("services", name, "host"),
                f"services.{name}.host {svc.host!r} is a scoped IPv6 address, which home-manager's Ollama cannot listen on",
                "listen on the address without its %zone or on ::, or drop home-manager from targets",
            )
        elif "%" in svc.host:
            # podman (and docker-compose) parse a publish address without a zone: "cannot parse as an IP address"
            c.error(
                ("services", name, "host"),
                f"services.{name}.host {svc.host!r} is a scoped IPv6 address, on which a container port cannot be published",
                "publish on the address without its %zone, or on :: or 0.0.0.0, or drop compose, quadlet and home-manager from targets",
            )
        auth = kind.container_auth
        if auth and svc.exposed and not svc.options.get(auth):
            c.error(
                ("services", name, "host"),
                f"services.{name} is published on {svc.host} without {auth}: its container would accept anyone",
                f"keep host: 127.0.0.1, or set {auth}: {kind.secrets[auth]}",
            )
        for key in ("model", "password_file", "api_key_file", "secret_key_file"):
            value = svc.options.get(key)
            if value and (":" in value or "," in value):
                c.error(
                    ("services", name, key),
                    f"services.{name}.{key} {value!r} contains '{':' if ':' in value else ','}', which a container volume mount cannot carry",
                    "move or link the file to a path without ':' and ','",
                )
        if hasattr(kind, "container_checks"):
            kind.container_checks(c, svc)
        mine = [(f"{name}-data", ("services", name))] if kind.data else []
        mine += [(f"{name}-{vol}", ("services", name, "volumes", vol)) for vol, _ in svc.options.get("volumes", ())]
        for volume, vpath in mine:
            if volume in volumes:
                c.error(vpath, f"the volume {volume!r} of services.{name} is also one of services.{volumes[volume]}", "rename the volume or one of the services", at_key=True)
            volumes.setdefault(volume, name)
