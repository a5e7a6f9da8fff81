"""Turn a loaded document into a `Spec`, or raise one StackError listing every problem."""

from __future__ import annotations

import hashlib
from typing import Any

from ..errors import StackError
from ..escape import NIX_ID
from . import checks as ck
from . import hosts as fleet_hosts
from . import instances
from . import kubernetes as k8s
from .checks import INVALID, Collector, dotted
from .loader import Document
from .model import (
    ALL_SYSTEMS,
    ALL_TARGETS,
    BRANCH_TABLE,
    BRANCHES,
    DEFAULT_BRANCH,
    CUDA_MAJORS,
    DEFAULT_TARGETS,
    PYTHON_VERSIONS,
    Gpu,
    Mirrors,
    NixCache,
    Python,
    Spec,
)

TOP_KEYS = (
    "version", "name", "description", "systems", "nixpkgs", "mirrors", "gpu",
    "python", "packages", "env", "services", "targets", "hosts",
    "data_dir",
    "kubernetes",
)  # fmt: skip

NAME = ck.NAME
# processes: the services' state folder, an absolute path or one under the home folder (~/...)
DATA_DIR = ck.string(pattern=r"(/|~/)[^\x00]*", describe="an absolute path or one starting with ~/", max_len=1024)
NIX_KEY = ck.string(pattern=r"[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=", describe="a Nix public key (name:base64)")
CAPABILITY = ck.string(pattern=r"[0-9]{1,2}\.[0-9]{1,2}a?", describe="a CUDA compute capability such as \"8.9\"")
# Variables the dev shell sets itself; setting them in `env:` would silently fight stackgen.
MANAGED_ENV = {
    "LD_LIBRARY_PATH": "the dev shell builds it from the manylinux libraries and the host driver (wheels bring their own CUDA)",
    "PYTHONPATH": "the dev shell unsets it so uv's virtualenv is used",
    "UV_PYTHON": "it is pinned to the Nix python of python.version",
    "UV_PYTHON_DOWNLOADS": "the dev shell sets it to never",
    "UV_DEFAULT_INDEX": "set mirrors.pypi instead",
    "PIP_INDEX_URL": "set mirrors.pypi instead",
    "HF_ENDPOINT": "set mirrors.huggingface instead",
    "NIX_CONFIG": "use mirrors.nix and env/mirrors.sh",
}


def validate(doc: Document) -> Spec:
    c = Collector(doc)
    c.problems.extend(doc.problems)
    data = doc.data
    if not isinstance(data, dict):
        c.error((), f"the spec must be a mapping of keys (version, name, services, ...), not {ck.kind_of(data)}")
        raise StackError(c.problems)
    ck.mapping(c, (), data, TOP_KEYS)

    for key in ("version", "name"):
        if key not in data:
            c.error((), f"missing required key '{key}'", "the spec starts with 'version: 1' and 'name: my-stack'")
    version = _field(c, data, "version", ck.integer(1, 1), 1)
    if version is INVALID and isinstance(data.get("version"), int):
        c.problems[-1] = doc.problem(("version",), f"version {data['version']} is not supported; this stackgen reads version 1")
    name = _field(c, data, "name", NAME, None)
    description = _field(c, data, "description", ck.string(max_len=1000, allow_newlines=True), "")
    systems = _field(c, data, "systems", ck.listof(ck.enum(ALL_SYSTEMS), min_len=1), ("x86_64-linux", "aarch64-linux"))
    nixpkgs = _field(c, data, "nixpkgs", ck.enum(BRANCHES), DEFAULT_BRANCH)
    mirrors = _mirrors(c, data.get("mirrors"))
    gpu = _gpu(c, data.get("gpu"))
    python = _python(c, data.get("python"))
    packages = _field(c, data, "packages", ck.listof(_package, max_len=5000), ())
    env = _env(c, data.get("env"))
    default_targets = _default_targets(c, data)
    targets = _field(c, data, "targets", ck.listof(ck.enum(ALL_TARGETS), min_len=1), default_targets)
    services = instances.services(c, data.get("services"), gpu, () if targets is INVALID else tuple(targets))
    declared = [n for n in data["services"] if isinstance(n, str)] if isinstance(data.get("services"), dict) else []
    hosts = fleet_hosts.hosts(c, data.get("hosts"), services, declared, systems, gpu)
    data_dir = _field(c, data, "data_dir", DATA_DIR, None)
    if targets is not INVALID and "fleet" in targets and data.get("hosts") is None:
        c.error(("targets", list(targets).index("fleet")), "the fleet target needs hosts:", "add hosts: (which machine runs which service), or drop fleet from targets")

    _semantics(c, systems, gpu)
    if targets is not INVALID and "processes" in targets and isinstance(data_dir, str) and systems is not INVALID:
        from ..procplan import socket_checks  # the processes target's Unix sockets must fit sun_path

        socket_checks(c, data_dir, services, systems)
    _branch_semantics(c, nixpkgs, systems)
    if targets is not INVALID and instances.CONTAINER_TARGETS & set(targets):
        instances.container_checks(c, services, native_ollama=not {"compose", "quadlet"} & set(targets))
    expose = k8s.section(c, data.get("kubernetes"), targets)
    if targets is not INVALID and k8s.TARGET in targets:
        k8s.checks(c, services, expose, images_checked=bool(instances.CONTAINER_TARGETS & set(targets)))
    if c.problems:
        raise StackError(sorted(c.problems, key=lambda p: (p.line or 0, p.col or 0)))
    targets = tuple(t for t in ALL_TARGETS if t in targets)  # canonical order
    return Spec(
        version=version,
        name=name,
        description=description,
        systems=tuple(systems),
        nixpkgs=nixpkgs,
        mirrors=mirrors,
        gpu=gpu,
        python=python,
        packages=tuple(packages),
        env=env,
        services=services,
        targets=targets,
        data_dir=data_dir,
        source_sha256=hashlib.sha256(doc.text.encode()).hexdigest(),
        warnings=tuple(c.warnings),
        kubernetes_expose=expose,
        hosts=hosts,
    )


def _field(c: Collector, data: dict, key: str, check: ck.Checker, default: Any, path: tuple = ()) -> Any:
    if key not in data or (data[key] is None and default is not None):
        return default
    return check(c, path + (key,), data[key])


def _mirrors(c: Collector, value: Any) -> Mirrors:
    path = ("mirrors",)
    data = ck.mapping(c, path, value, ("region", "nix", "pypi", "huggingface", "flake_inputs"))
    if data is INVALID:
        return Mirrors()
    region = _field(c, data, "region", ck.enum(("global", "china")), "global", path)
    nix = _field(c, data, "nix", ck.listof(_nix_cache), (), path)
    pypi = _field(c, data, "pypi", ck.url, None, path)
    hf = _field(c, data, "huggingface", ck.url, None, path)
    # Where flake.nix takes nixpkgs (and home-manager) from: GitHub is slow or blocked in China.
    inputs = _field(c, data, "flake_inputs", ck.enum(("mirror", "github")), "mirror" if region == "china" else "github", path)
    return Mirrors(region=region, nix=nix if nix is not INVALID else (), pypi=pypi, huggingface=hf, flake_inputs=inputs)


def _nix_cache(c: Collector, path: tuple, value: Any) -> Any:
    if isinstance(value, str):
        got = ck.url(c, path, value)
        return INVALID if got is INVALID else NixCache(got)
    data = ck.mapping(c, path, value, ("url", "key"))
    if data is INVALID:
        return INVALID
    if "url" not in data:
        return c.error(path, f"{dotted(path)} needs a 'url'")
    got_url = ck.url(c, path + ("url",), data["url"])
    key = _field(c, data, "key", NIX_KEY, None, path)
    if INVALID in (got_url, key):
        return INVALID
    return NixCache(got_url, key)


def _gpu(c: Collector, value: Any) -> Gpu:
    path = ("gpu",)
    data = ck.mapping(c, path, value, ("vendor", "cuda", "capabilities", "open"))
    if data is INVALID:
        return Gpu()
    vendor = _field(c, data, "vendor", ck.enum(("none", "nvidia")), "none", path)
    cuda = _field(c, data, "cuda", ck.enum(CUDA_MAJORS, coerce_int=True), "12", path)
    caps = _field(c, data, "capabilities", ck.listof(CAPABILITY), (), path)
    open_ = _field(c, data, "open", ck.boolean, True, path)
    return Gpu(vendor=vendor, cuda=cuda, capabilities=caps if caps is not INVALID else (), open=open_)


def _python(c: Collector, value: Any) -> Python:
    path = ("python",)
    data = ck.mapping(c, path, value, ("version", "uv"))
    if data is INVALID:
        return Python()
    version = _field(c, data, "version", ck.enum(PYTHON_VERSIONS), "3.12", path)
    uv = _field(c, data, "uv", ck.boolean, True, path)
    return Python(version=version, uv=uv)


def _package(c: Collector, path: tuple, value: Any) -> Any:
    value = ck.string(max_len=200)(c, path, value)
    if value is INVALID:
        return value
    if not all(NIX_ID.fullmatch(part) for part in value.split(".")):  # NIX_ID(\.NIX_ID)*
        return c.error(
            path,
            f"{dotted(path)} {value!r} is not a nixpkgs attribute path",
            "write the attribute name only, such as nodejs_22 or python312Packages.ipython",
        )
    keyword = next((p for p in value.split(".") if p in ck.NIX_KEYWORDS), None)
    if keyword:
        return c.error(path, f"{dotted(path)} {value!r} uses the Nix keyword '{keyword}' as an attribute name")
    return value


def _env(c: Collector, value: Any) -> dict[str, str]:
    return ck.env_vars(c, ("env",), value, MANAGED_ENV)


def _semantics(c: Collector, systems: Any, gpu: Gpu) -> None:
    if gpu.nvidia and systems is not INVALID:
        darwin = [s for s in systems if s.endswith("-darwin")]
        if darwin:
            c.error(("gpu", "vendor"), f"gpu.vendor nvidia cannot be used with {', '.join(darwin)}", "remove the darwin systems or set gpu.vendor: none")
    if not gpu.nvidia and gpu.capabilities:
        c.error(("gpu", "capabilities"), "gpu.capabilities is set but gpu.vendor is none", "set gpu.vendor: nvidia")


def _default_targets(c: Collector, data: dict) -> tuple[str, ...]:
    """The targets of a spec without `targets:`: `fleet` joins them with `hosts:`; `processes`
    leaves them (with a warning) when a service needs a container engine, so a stack with a
    `container` service renders without listing its targets."""
    targets = DEFAULT_TARGETS + (("fleet",) if data.get("hosts") is not None else ())
    services = data.get("services")
    if "targets" in data or not isinstance(services, dict):
        return targets
    from ..services import KINDS

    for name, values in services.items():
        kind = values.get("kind", name) if isinstance(values, dict) else name
        if isinstance(kind, str) and kind in KINDS and not KINDS[kind].native:
            c.warning(
                ("services", name),
                f"the processes target is left out: services.{name} is a {kind} service, which needs a container engine",
                "list targets: to choose them yourself",
            )
            return tuple(t for t in targets if t != "processes")
    return targets


def _branch_semantics(c: Collector, nixpkgs: Any, systems: Any) -> None:
    if nixpkgs is INVALID:
        return
    branch = BRANCH_TABLE[nixpkgs]
    if not branch.x86_64_darwin and systems is not INVALID and "x86_64-darwin" in systems:
        c.error(
            ("systems", list(systems).index("x86_64-darwin")),
            f"nixpkgs {nixpkgs} does not build for x86_64-darwin (Intel Macs): nixpkgs dropped it after 26.05",
            "remove x86_64-darwin from systems, or pin nixpkgs: nixos-26.05 (supported until 2026-12-31)",
        )
    if branch.end_of_life:
        c.warning(
            ("nixpkgs",),
            f"nixpkgs {nixpkgs} reaches its end of life on {branch.end_of_life}: no security fixes after that",
            f"move to nixpkgs: {DEFAULT_BRANCH} (check the option changes in the README's NixOS section)",
        )
