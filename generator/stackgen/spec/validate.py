"""Turn a loaded document into a `Spec`, or raise one StackError listing every problem."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..errors import StackError
from . import checks as ck
from .checks import INVALID, Collector, dotted
from .loader import Document
from .model import (
    ALL_SYSTEMS,
    ALL_TARGETS,
    BRANCH_TABLE,
    BRANCHES,
    DEFAULT_BRANCH,
    CUDA_MAJORS,
    POSTGRES_EXTENSION_SQL,
    POSTGRES_VERSIONS,
    PYTHON_VERSIONS,
    Gpu,
    Mirrors,
    NixCache,
    Python,
    Service,
    Spec,
)

TOP_KEYS = (
    "version", "name", "description", "systems", "nixpkgs", "mirrors", "gpu",
    "python", "packages", "env", "services", "targets",
)  # fmt: skip

NAME = ck.string(pattern=r"[a-z][a-z0-9-]{0,62}", describe="a valid name (lowercase letters, digits and '-', starting with a letter, at most 63)")
NIX_KEY = ck.string(pattern=r"[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=", describe="a Nix public key (name:base64)")
IDENT = ck.string(pattern=r"[a-z_][a-z0-9_]{0,62}", describe="a plain SQL identifier (lowercase letters, digits, '_')")
# Names a database (and its owner role, named like it) cannot take: they exist in every cluster
# (the superuser and its database, the templates) or PostgreSQL reserves them as role names.
RESERVED_DATABASES = {
    "postgres": "the superuser role and its database exist in every cluster",
    "template0": "a template database that exists in every cluster",
    "template1": "a template database that exists in every cluster",
    "public": "PostgreSQL reserves it as a role name",
    "none": "PostgreSQL reserves it as a role name",
}


def _database(c: Collector, path: tuple, value: Any) -> Any:
    """A database name that the init SQL (CREATE DATABASE, and CREATE ROLE of the same name)
    and NixOS's ensureDatabases/ensureUsers can create in a fresh cluster."""
    value = IDENT(c, path, value)
    if value is INVALID:
        return value
    why = RESERVED_DATABASES.get(value) or ("PostgreSQL reserves role names starting with pg_" if value.startswith("pg_") else None)
    if why:
        return c.error(
            path,
            f"{dotted(path)} {value!r} cannot be a database name: each database gets an owner role of the same name, and {why}",
            "choose another name, such as app or aidb",
        )
    return value

OLLAMA_MODEL = ck.string(
    pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*(:[A-Za-z0-9][A-Za-z0-9._-]*)?",
    describe="an Ollama model name (name:tag, or a registry path such as hf.co/org/repo:quant)",
    max_len=256,
)
IMAGE = ck.string(
    pattern=r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})",
    describe="a container image pinned to a tag or digest (registry/name:tag)",
    max_len=512,
)
SHA256 = ck.string(pattern=r"[0-9a-f]{64}", describe="a sha256 hex digest (64 lowercase hex digits)")
MEMSIZE = ck.string(pattern=r"(?i)[0-9]+(b|k|kb|m|mb|g|gb)?", describe="a Redis memory size such as 512mb", coerce_int=True)
ATTR_PART = r"[A-Za-z_][A-Za-z0-9_'-]*"
ATTR_PATH = re.compile(rf"{ATTR_PART}(\.{ATTR_PART})*")
CAPABILITY = ck.string(pattern=r"[0-9]{1,2}\.[0-9]{1,2}a?", describe="a CUDA compute capability such as \"8.9\"")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names that hold secrets: the words anywhere (PGPASSWORD, AWS_SECRET_ACCESS_KEY), and TOKEN
# or PAT as a whole word (HF_TOKEN, GITHUB_PAT; not TOKENIZERS_PARALLELISM).
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|api_?key|access_?key|private_?key|credential)|(^|_)(tokens?|pat)(_|$)")
URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")
INLINE_SECRETS = ("password", "passwd", "secret", "secret_key", "token", "api_key", "apikey")

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


def _svc(default_port: int, gpu_capable: bool, fields: dict[str, ck.Checker], required: tuple[str, ...] = ()) -> dict:
    return {"port": default_port, "gpu_capable": gpu_capable, "fields": fields, "required": required}


SERVICES: dict[str, dict] = {
    "ollama": _svc(11434, True, {"models": ck.listof(OLLAMA_MODEL, max_len=100)}),
    "llama-cpp": _svc(
        8080,
        True,
        {
            "model": ck.abspath,
            "model_url": ck.url,
            "model_sha256": SHA256,
            "context": ck.integer(256, 1_048_576),
            "gpu_layers": ck.integer(0, 1000),
        },
        required=("model",),
    ),
    "postgres": _svc(
        5432,
        False,
        {
            "version": ck.enum(POSTGRES_VERSIONS),
            "databases": ck.listof(_database, max_len=100),
            "extensions": ck.listof(ck.enum(POSTGRES_EXTENSION_SQL)),
            "password_file": ck.abspath,
        },
    ),
    "redis": _svc(6379, False, {"maxmemory": MEMSIZE, "password_file": ck.abspath}),
    "qdrant": _svc(6333, False, {"grpc_port": ck.port, "api_key_file": ck.abspath}),
    "open-webui": _svc(3000, False, {"secret_key_file": ck.abspath}),
}
SERVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "ollama": {"models": ()},
    "llama-cpp": {"model_url": None, "model_sha256": None, "context": 4096, "gpu_layers": None},
    "postgres": {"version": 17, "databases": (), "extensions": (), "password_file": None},
    "redis": {"maxmemory": None, "password_file": None},
    "qdrant": {"grpc_port": 6334, "api_key_file": None},
    "open-webui": {"secret_key_file": None},
}
COMMON_SERVICE_KEYS = ("port", "host", "gpu", "image")


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
    targets = _field(c, data, "targets", ck.listof(ck.enum(ALL_TARGETS), min_len=1), ALL_TARGETS)
    services = _services(c, data.get("services"), gpu)

    _semantics(c, systems, gpu, services)
    _branch_semantics(c, nixpkgs, systems)
    if targets is not INVALID and CONTAINER_TARGETS & set(targets):
        _container_semantics(c, services, native_ollama=not {"compose", "quadlet"} & set(targets))
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
        source_sha256=hashlib.sha256(doc.text.encode()).hexdigest(),
        warnings=tuple(c.warnings),
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
    if not ATTR_PATH.fullmatch(value):
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
    path = ("env",)
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.error(path, f"env must be a mapping of NAME: value, not {ck.kind_of(value)}")
        return {}
    out: dict[str, str] = {}
    for key, val in value.items():
        kpath = path + (key,)
        if not ENV_NAME.fullmatch(key):
            c.error(kpath, f"env name {key!r} is not a valid variable name", "use letters, digits and '_', not starting with a digit", at_key=True)
            continue
        if key in MANAGED_ENV:
            c.error(kpath, f"env.{key} is managed by stackgen", MANAGED_ENV[key], at_key=True)
            continue
        if SECRET_NAME.search(key):
            c.error(
                kpath,
                f"env.{key} looks like a secret; secrets are never written into the spec",
                "keep it out of stack.yaml: load it from a file at run time (direnv, sops-nix, a secrets manager)",
                at_key=True,
            )
            continue
        got = ck.string(allow_newlines=True, coerce_int=True, max_len=32768)(c, kpath, val)
        if got is not INVALID and URL_CREDENTIALS.search(got):
            c.error(
                kpath,
                f"env.{key} holds a URL with a password in it; secrets are never written into the spec",
                "drop the password from the URL and supply it at run time (e.g. PGPASSFILE, a .netrc, a secrets manager)",
            )
        elif got is not INVALID:
            out[key] = got
    return dict(sorted(out.items()))


def _services(c: Collector, value: Any, gpu: Gpu) -> dict[str, Service]:
    path = ("services",)
    data = ck.mapping(c, path, value, SERVICES)
    if data is INVALID:
        return {}
    out: dict[str, Service] = {}
    for kind, info in SERVICES.items():  # canonical order
        if kind not in data:
            continue
        spath = path + (kind,)
        fields = info["fields"]
        raw = ck.mapping(c, spath, data[kind], COMMON_SERVICE_KEYS + tuple(fields), lambda key, kind=kind: _inline_secret(kind, key))
        if raw is INVALID:
            continue
        for key in info["required"]:
            if key not in raw:
                c.error(spath, f"services.{kind} needs '{key}'", _required_hint(kind, key), at_key=True)
        port = _field(c, raw, "port", ck.port, info["port"], spath)
        host = _field(c, raw, "host", ck.host, "127.0.0.1", spath)
        image = _field(c, raw, "image", IMAGE, None, spath)
        want_gpu = _field(c, raw, "gpu", ck.boolean, None, spath)
        if want_gpu is True and not info["gpu_capable"]:
            c.error(spath + ("gpu",), f"services.{kind} cannot use a GPU")
        elif want_gpu is True and not gpu.nvidia:
            c.error(spath + ("gpu",), f"services.{kind}.gpu is true but gpu.vendor is none", "set gpu.vendor: nvidia, or remove gpu: true")
        if want_gpu is None or want_gpu is INVALID:
            want_gpu = info["gpu_capable"] and gpu.nvidia
        options = dict(SERVICE_DEFAULTS[kind])
        for key, check in fields.items():
            if key in raw:
                options[key] = _field(c, raw, key, check, None, spath)
        if INVALID in (port, host, image) or INVALID in options.values():
            continue
        out[kind] = Service(kind=kind, port=port, host=host, gpu=bool(want_gpu), image=image, options=options)
    return out


# The secret files each service takes: a bare password, or an environment file (KEY=value)
# because the service reads that secret from its environment on every target.
SECRET_FILES = {
    "postgres": ("password_file", "/run/secrets/postgres-password (the bare password)"),
    "redis": ("password_file", "/run/secrets/redis-password (the bare password)"),
    "qdrant": ("api_key_file", "/run/secrets/qdrant.env (an environment file: QDRANT__SERVICE__API_KEY=...)"),
    "open-webui": ("secret_key_file", "/run/secrets/open-webui.env (an environment file: WEBUI_SECRET_KEY=...)"),
}


def _inline_secret(kind: str, key: str) -> tuple[str, str] | None:
    if key.lower() not in INLINE_SECRETS:
        return None
    message = f"inline secret '{key}' in services.{kind}: secrets are never written into the spec"
    if kind not in SECRET_FILES:
        return message, f"services.{kind} takes no secret; keep it listening on 127.0.0.1"
    file_key, example = SECRET_FILES[kind]
    return message, f"put it in a file and write {file_key}: {example}"


def _required_hint(kind: str, key: str) -> str | None:
    if (kind, key) == ("llama-cpp", "model"):
        return "give the GGUF file's path, e.g. model: /var/lib/llama-cpp/models/qwen2.5-coder-7b-q4_k_m.gguf"
    return None


def _semantics(c: Collector, systems: Any, gpu: Gpu, services: dict[str, Service]) -> None:
    if gpu.nvidia and systems is not INVALID:
        darwin = [s for s in systems if s.endswith("-darwin")]
        if darwin:
            c.error(("gpu", "vendor"), f"gpu.vendor nvidia cannot be used with {', '.join(darwin)}", "remove the darwin systems or set gpu.vendor: none")
    if not gpu.nvidia and gpu.capabilities:
        c.error(("gpu", "capabilities"), "gpu.capabilities is set but gpu.vendor is none", "set gpu.vendor: nvidia")
    taken: dict[int, list[tuple[str, str, tuple]]] = {}
    for kind, svc in services.items():
        ports = [("port", svc.port)]
        if kind == "qdrant":
            ports.append(("grpc_port", svc.options["grpc_port"]))
        for key, number in ports:
            for other_name, other_host, _ in taken.get(number, []):
                if _hosts_overlap(svc.host, other_host):
                    _port_clash(c, kind, key, number, other_name)
                    break
            taken.setdefault(number, []).append((f"services.{kind}.{key}" if key != "port" else f"services.{kind}", svc.host, ()))


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


def _port_clash(c: Collector, kind: str, key: str, number: int, other: str) -> None:
    """Say which port clashed and which setting moves it; a defaulted port is named as one."""
    path = ("services", kind, key)
    what = f"services.{kind}.{key} {number}"
    if c.raw(path) is None:  # not written in the spec: the kind's default
        label = "port" if key == "port" else f"{key.removesuffix('_port')} port"
        what += f" (the default {label} of {kind})"
        hint = f"set services.{kind}.{key} to a free port, or move {other} to another port"
    else:
        hint = f"give services.{kind}.{key} or {other} another port"
    c.error(path, f"{what} is already used by {other}", hint)


def _hosts_overlap(a: str, b: str) -> bool:
    wildcard = ("0.0.0.0", "::")
    a, b = ("127.0.0.1" if h == "localhost" else h for h in (a, b))
    return a == b or a in wildcard or b in wildcard


# Targets that run services in containers (home-manager through its Quadlet module).
CONTAINER_TARGETS = {"compose", "quadlet", "home-manager"}
# What a container of each kind needs so that publishing it beyond loopback is not an open door.
CONTAINER_AUTH = {"postgres": "password_file", "redis": "password_file", "qdrant": "api_key_file"}


def _container_semantics(c: Collector, services: dict[str, Service], native_ollama: bool) -> None:
    """Checks that only matter when the services run as containers (compose, quadlet, home-manager;
    home-manager alone runs Ollama natively)."""
    from ..containers import DEFAULT_POSTGRES_EXTENSIONS, default_image

    for kind, svc in services.items():
        if "%" in svc.host and kind == "ollama" and native_ollama:
            # home-manager writes the host both into the user unit's Environment= (where `%`
            # must be doubled) and into the model-pull script (where it must not be)
            c.error(
                ("services", kind, "host"),
                f"services.{kind}.host {svc.host!r} is a scoped IPv6 address, which home-manager's Ollama cannot listen on",
                "listen on the address without its %zone or on ::, or drop home-manager from targets",
            )
        elif "%" in svc.host:
            # podman (and docker-compose) parse a publish address without a zone: "cannot parse as an IP address"
            c.error(
                ("services", kind, "host"),
                f"services.{kind}.host {svc.host!r} is a scoped IPv6 address, on which a container port cannot be published",
                "publish on the address without its %zone, or on :: or 0.0.0.0, or drop compose, quadlet and home-manager from targets",
            )
        auth = CONTAINER_AUTH.get(kind)
        if auth and svc.exposed and not svc.options.get(auth):
            c.error(
                ("services", kind, "host"),
                f"services.{kind} is published on {svc.host} without {auth}: its container would accept anyone",
                f"keep host: 127.0.0.1, or set {auth}: {SECRET_FILES[kind][1]}",
            )
        for key in ("model", "password_file", "api_key_file", "secret_key_file"):
            value = svc.options.get(key)
            if value and (":" in value or "," in value):
                c.error(
                    ("services", kind, key),
                    f"services.{kind}.{key} {value!r} contains '{':' if ':' in value else ','}', which a container volume mount cannot carry",
                    "move or link the file to a path without ':' and ','",
                )
        if kind == "postgres" and svc.image is None:
            for i, ext in enumerate(svc.options["extensions"]):
                if ext not in DEFAULT_POSTGRES_EXTENSIONS:
                    c.error(
                        ("services", kind, "extensions", i),
                        f"the default postgres container image ({default_image(svc)}) has no {ext}",
                        f"set services.postgres.image to an image that includes {ext}, or drop compose, quadlet and home-manager from targets",
                    )
