"""What each declared service looks like as a container, for the compose, quadlet and
home-manager targets.

One table of pinned images and one function, `plan`, that turns the spec into a list of
`Container`s. The targets only serialize that list (compose YAML, Quadlet INI, home-manager's
`services.podman.containers`); none decides anything about images, ports, health or secrets
on its own.

Strings here are the values the container must see. Each serializer escapes them for its
own format (compose interpolation, systemd specifiers and quoting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection

from . import mirrordata
from .spec.model import POSTGRES_EXTENSION_SQL, POSTGRES_PRELOAD, Service, Spec

# Pinned image tags (never `latest`). A service's `image:` in stack.yaml replaces these.
OLLAMA_IMAGE = "docker.io/ollama/ollama:0.12.10"
LLAMA_CPP_BUILD = "b7018"  # llama.cpp release build; the CPU and CUDA server images share it
LLAMA_CPP_IMAGE = f"ghcr.io/ggml-org/llama.cpp:server-{LLAMA_CPP_BUILD}"
LLAMA_CPP_CUDA_IMAGE = f"ghcr.io/ggml-org/llama.cpp:server-cuda-{LLAMA_CPP_BUILD}"
PGVECTOR_RELEASE = "0.8.1"  # pgvector/pgvector publishes <release>-pg<major> for PostgreSQL 13..18
REDIS_IMAGE = "docker.io/library/redis:7.4.6"
QDRANT_IMAGE = "docker.io/qdrant/qdrant:v1.15.3"
OPEN_WEBUI_IMAGE = "ghcr.io/open-webui/open-webui:0.6.26"

# Extensions the default postgres image (pgvector/pgvector) carries; others need `image:`.
DEFAULT_POSTGRES_EXTENSIONS = ("pgvector",)

GPU_DEVICE = "nvidia.com/gpu=all"  # CDI name; `nvidia-ctk cdi generate` creates the spec
SECRETS_DIR = "/run/secrets"


def default_image(svc: Service) -> str:
    if svc.kind == "ollama":
        return OLLAMA_IMAGE
    if svc.kind == "llama-cpp":
        return LLAMA_CPP_CUDA_IMAGE if svc.gpu else LLAMA_CPP_IMAGE
    if svc.kind == "postgres":
        return f"docker.io/pgvector/pgvector:{PGVECTOR_RELEASE}-pg{svc.options['version']}"
    if svc.kind == "redis":
        return REDIS_IMAGE
    if svc.kind == "qdrant":
        return QDRANT_IMAGE
    if svc.kind == "open-webui":
        return OPEN_WEBUI_IMAGE
    raise AssertionError(f"no image for {svc.kind}")


@dataclass(frozen=True)
class Health:
    command: str  # run by /bin/sh inside the container; exit 0 = healthy
    start_period: str = "30s"
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 5


@dataclass(frozen=True)
class Container:
    kind: str  # the service's spec key, also the compose service name
    image: str
    health: Health
    ports: tuple[tuple[str, int, int], ...]  # (host address, host port, container port)
    volumes: tuple[tuple[str, str], ...] = ()  # (volume name, container path): named volumes for state
    binds: tuple[tuple[str, str], ...] = ()  # (host path, container path), read-only
    secrets: tuple[tuple[str, str], ...] = ()  # (secret name, host file): mounted at /run/secrets/<name>
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()  # arguments after the image (empty: the image's own)
    gpu: bool = False
    depends_on: tuple[str, ...] = ()  # kinds that must be healthy first
    init_sql: str | None = None  # postgres: run once on an empty data volume
    host_network: bool = False  # shares the host's network: publishes nothing, listens on the service's host


def secret_path(name: str) -> str:
    return f"{SECRETS_DIR}/{name}"


# A POSIX sh program that exports the NAME=value lines of an environment file ($1) and execs
# the rest of its arguments: the image's own command. It is how api_key_file and
# secret_key_file reach Qdrant and Open WebUI, which read their keys from environment
# variables only. podman-compose would read an `env_file:` itself and pass every line as
# `podman create -e NAME=value`, where any user of the host sees it in `ps`; mounted as a
# secret and read in the container, the key is on no command line.
#
# The file is parsed, never executed: lines are `NAME=value` as in a systemd EnvironmentFile
# (what NixOS reads); blank lines and lines starting with `#` or `;` are skipped; whitespace
# around the name and the value is dropped, as is one pair of quotes around the whole value;
# nothing else is interpreted (no `$`, backslash or command substitution). The loader's own
# variables start with `_sg_` (a file cannot set those): a file's `n=$(cmd)` must not reach its
# arithmetic, which shells evaluate. A file that sets
# no variable (missing, unreadable, or holding a bare key) stops the container: a service
# must not start without the key it was given.
ENV_FILE_LOADER = (
    "_sg_f=$1; shift; _sg_ws=$(printf ' \\t\\r'); _sg_n=0; _sg_found=0; "
    "while IFS= read -r _sg_line || [ -n \"$_sg_line\" ]; do "
    "_sg_n=$((_sg_n+1)); _sg_line=${_sg_line#\"${_sg_line%%[!$_sg_ws]*}\"}; "
    "case $_sg_line in '#'*|';'*) continue;; *=*) ;; *) continue;; esac; "
    "_sg_name=${_sg_line%%=*}; _sg_name=${_sg_name%\"${_sg_name##*[!$_sg_ws]}\"}; "
    "_sg_value=${_sg_line#*=}; _sg_value=${_sg_value#\"${_sg_value%%[!$_sg_ws]*}\"}; "
    "_sg_value=${_sg_value%\"${_sg_value##*[!$_sg_ws]}\"}; "
    "case $_sg_value in '\"'*'\"'|\"'\"*\"'\") _sg_value=${_sg_value#?}; _sg_value=${_sg_value%?};; esac; "
    "case $_sg_name in ''|[0-9]*|*[!A-Za-z0-9_]*|_sg_*) "
    "echo \"stackgen: line $_sg_n of $_sg_f is not NAME=value: skipped\" >&2; continue;; esac; "
    "export \"$_sg_name=$_sg_value\"; _sg_found=$((_sg_found+1)); "
    "done <\"$_sg_f\"; "
    "[ \"$_sg_found\" -gt 0 ] || { echo \"stackgen: $_sg_f sets no NAME=value variable\" >&2; exit 1; }; "
    "exec \"$@\""
)


def with_environment_file(secret: tuple[str, str] | None, command: tuple[str, ...]) -> tuple[str, ...]:
    """`command` (the image's entrypoint + cmd), run with the variables of the environment file
    mounted as `secret`; unchanged without one."""
    if not secret:
        return ()
    return ("sh", "-c", ENV_FILE_LOADER, "stackgen-env", secret_path(secret[0]), *command)


HOST_NETWORK_KINDS = ("open-webui",)  # services that can run on the host's network


def plan(spec: Spec, peer: Callable[[str], str], host_network: Collection[str] = ()) -> list[Container]:
    """The spec's services as containers. `peer(kind)` is the host name another container
    reaches that service by (the compose service name, or the Quadlet container name).

    Kinds in `host_network` (only HOST_NETWORK_KINDS) share the host's network, for a client of
    a service that is not a container (home-manager's native Ollama): such a container publishes
    no port, listens on the service's own address and port, and reaches every peer at the
    address that peer listens on or is published on (`Service.local_url`), not through `peer`.
    """
    unsupported = set(host_network) - set(HOST_NETWORK_KINDS)
    if unsupported:
        raise AssertionError(f"no host-network container for {sorted(unsupported)}")
    return [
        _open_webui(spec, svc, peer, host_network=True) if kind in host_network else _BUILDERS[kind](spec, svc, peer)
        for kind, svc in spec.services.items()
    ]


def _base(spec: Spec, svc: Service, internal: int, health: Health, **kw) -> Container:
    published = [(svc.host, svc.port, internal), *kw.pop("extra_ports", ())]
    return Container(
        kind=svc.kind,
        image=svc.image or default_image(svc),
        health=health,
        ports=() if kw.get("host_network") else tuple((_address(host), port, inner) for host, port, inner in published),
        volumes=((f"{svc.kind}-data", kw.pop("data")),) if "data" in kw else (),
        gpu=svc.gpu,
        **kw,
    )


def _address(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host  # port publishing takes addresses only


def _secret(svc: Service, key: str) -> tuple[str, str] | None:
    """The secret for option `key` (a *_file path), named <kind>-<what>, or None when unset."""
    host_file = svc.options.get(key)
    if not host_file:
        return None
    return (f"{svc.kind}-{key.removesuffix('_file').replace('_', '-')}", host_file)


def _mirror_env(spec: Spec, hf: bool = False, pypi: bool = False) -> dict[str, str]:
    env = {}
    if hf and mirrordata.hf_endpoint(spec):
        env["HF_ENDPOINT"] = mirrordata.hf_endpoint(spec)
    if pypi and mirrordata.pypi_index(spec):
        env["PIP_INDEX_URL"] = mirrordata.pypi_index(spec)
        env["UV_DEFAULT_INDEX"] = mirrordata.pypi_index(spec)
    return env


def _ollama(spec: Spec, svc: Service, peer) -> Container:
    return _base(
        spec, svc, 11434,
        Health("ollama list >/dev/null", start_period="60s"),
        data="/root/.ollama",
        env={"OLLAMA_HOST": "0.0.0.0:11434"},
    )  # fmt: skip


def _llama_cpp(spec: Spec, svc: Service, peer) -> Container:
    model = svc.options["model"]
    args = ["--model", model, "--host", "0.0.0.0", "--port", "8080", "--ctx-size", str(svc.options["context"])]
    layers = svc.options["gpu_layers"]
    if svc.gpu:
        args += ["--n-gpu-layers", str(999 if layers is None else layers)]
    model_dir = model.rsplit("/", 1)[0] or "/"
    return _base(
        spec, svc, 8080,
        Health("curl --globoff -fsS http://127.0.0.1:8080/health >/dev/null", start_period="300s"),
        binds=((model_dir, model_dir),),
        env=_mirror_env(spec, hf=True),
        command=tuple(args),
    )  # fmt: skip


def _postgres(spec: Spec, svc: Service, peer) -> Container:
    version = svc.options["version"]
    databases = list(svc.options["databases"])
    extensions = list(svc.options["extensions"])
    secret = _secret(svc, "password_file")
    env = {}
    if databases:
        env["POSTGRES_DB"] = databases[0]
    if secret:
        env["POSTGRES_PASSWORD_FILE"] = secret_path(secret[0])
    else:  # no password: local trust (spec validation refuses this on an exposed host)
        env["POSTGRES_HOST_AUTH_METHOD"] = "trust"
    preload = [e for e in POSTGRES_PRELOAD if e in extensions]
    return _base(
        spec, svc, 5432,
        Health("pg_isready -q -h 127.0.0.1 -p 5432 -U postgres"),
        data=postgres_data_dir(version, svc.image or default_image(svc)),
        secrets=(secret,) if secret else (),
        env=env,
        command=("postgres", "-c", "shared_preload_libraries=" + ",".join(preload)) if preload else (),
        init_sql=_postgres_init(databases, extensions, secret_path(secret[0]) if secret else None),
    )  # fmt: skip


def postgres_data_dir(version: int, image: str) -> str:
    """Where a postgres image keeps its data (the volume's mount point)."""
    if "timescaledb-ha" in image:  # Timescale's HA image runs as user postgres from its home
        return "/home/postgres/pgdata"
    # PostgreSQL 18 images keep PGDATA in a versioned folder under /var/lib/postgresql.
    return "/var/lib/postgresql" if version >= 18 else "/var/lib/postgresql/data"


def _postgres_init(databases: list[str], extensions: list[str], password_file: str | None) -> str | None:
    """SQL the image's entrypoint runs once, as the superuser, on an empty data directory:
    the databases, each owned by a role of its own name (as on NixOS, ensureDBOwnership),
    the extensions, and the roles' password when there is a password file."""
    if not databases and not extensions:
        return None
    lines = [
        "-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.",
        "-- The postgres image runs this once, when it initializes an empty data volume.",
    ]
    lines += [f'CREATE DATABASE "{db}";' for db in databases[1:]]
    for db in databases:
        lines += [f'CREATE ROLE "{db}" LOGIN;', f'ALTER DATABASE "{db}" OWNER TO "{db}";']
    for db in databases or ["postgres"]:
        names = [POSTGRES_EXTENSION_SQL[e] for e in extensions if e != "pg_cron"]
        if names:
            lines.append(f'\\connect "{db}"')
            lines += [f'CREATE EXTENSION IF NOT EXISTS "{name}";' for name in names]
    if "pg_cron" in extensions:  # pg_cron lives in cron.database_name, "postgres" by default
        lines += ['\\connect "postgres"', 'CREATE EXTENSION IF NOT EXISTS "pg_cron";']
    if password_file:
        lines += postgres_password_sql(databases, password_file)
    return "\n".join(lines) + "\n"


def postgres_password_sql(databases: list[str], password_file: str) -> list[str]:
    """psql lines that give each owner role the password in `password_file` (never inline)."""
    if not databases:
        return []
    return [f"\\set password `cat {password_file}`"] + [f"ALTER ROLE \"{db}\" WITH PASSWORD :'password';" for db in databases]


def _redis(spec: Spec, svc: Service, peer) -> Container:
    secret = _secret(svc, "password_file")
    # Other containers reach it over the stack's network, not loopback; what the host sees is
    # decided by the published port (127.0.0.1 unless the spec exposes it, and then with a password).
    server = ["redis-server", "--appendonly", "yes", "--protected-mode", "no"]
    if svc.options["maxmemory"]:
        server += ["--maxmemory", svc.options["maxmemory"]]
    ping = "redis-cli -p 6379 ping | grep -q PONG"
    if secret:
        path = secret_path(secret[0])
        # redis-server has no password-file option, and a password given as an argument shows
        # in `ps` to every user of the host. A shell writes it into a private config file
        # (printf is a builtin: no process sees it), escaped for redis' quoted strings, then
        # hands over to the image's entrypoint, which drops root to the redis user.
        conf = "/tmp/stackgen-redis.conf"
        command: tuple[str, ...] = (
            "sh",
            "-c",
            f"umask 077 && printf 'requirepass \"%s\"\\n' \"$(sed 's/[\\\\\"]/\\\\&/g' {path})\" >{conf}"
            f" && {{ chown redis {conf} 2>/dev/null || true; }}"
            f" && exec docker-entrypoint.sh {server[0]} {conf} " + " ".join(server[1:]),
        )
        ping = f'REDISCLI_AUTH="$(cat {path})" {ping}'
    else:
        command = tuple(server)
    return _base(spec, svc, 6379, Health(ping), data="/data", secrets=(secret,) if secret else (), command=command)


# The images' own commands, which the environment-file loader execs (neither image has an
# ENTRYPOINT): qdrant/qdrant's Dockerfile has WORKDIR /qdrant and CMD ["./entrypoint.sh"];
# open-webui's has WORKDIR /app/backend and CMD ["bash", "start.sh"]. An `image:` replacement
# must keep them when it is given a key file.
QDRANT_COMMAND = ("./entrypoint.sh",)
OPEN_WEBUI_COMMAND = ("bash", "start.sh")


def _qdrant(spec: Spec, svc: Service, peer) -> Container:
    # The image has neither curl nor wget; bash's /dev/tcp asks /readyz (open without the API key).
    readyz = "bash -c 'exec 3<>/dev/tcp/127.0.0.1/6333 && printf \"GET /readyz HTTP/1.0\\r\\n\\r\\n\" >&3 && grep -q \" 200 \" <&3'"
    # api_key_file is an environment file (QDRANT__SERVICE__API_KEY=..., as on NixOS)
    secret = _secret(svc, "api_key_file")
    return _base(
        spec, svc, 6333,
        Health(readyz),
        extra_ports=((svc.host, svc.options["grpc_port"], 6334),),
        data="/qdrant/storage",
        secrets=(secret,) if secret else (),
        env={"QDRANT__TELEMETRY_DISABLED": "true"},
        command=with_environment_file(secret, QDRANT_COMMAND),
    )  # fmt: skip


def _open_webui(spec: Spec, svc: Service, peer, host_network: bool = False) -> Container:
    # The image sets these too; a replacement `image:` may not.
    env = {"SCARF_NO_ANALYTICS": "True", "DO_NOT_TRACK": "True", "ANONYMIZED_TELEMETRY": "False"}
    depends = []
    url = "http://127.0.0.1:8080"
    if host_network:  # listen where the published port would have been
        env.update(HOST=_address(svc.host), PORT=str(svc.port))
        url = svc.local_url
    if spec.has("ollama"):
        ollama = spec.services["ollama"]
        env["OLLAMA_BASE_URL"] = ollama.local_url if host_network else f"http://{peer('ollama')}:11434"
        depends.append("ollama")
    if spec.has("llama-cpp"):
        llama = spec.services["llama-cpp"]
        env["OPENAI_API_BASE_URL"] = (llama.local_url if host_network else f"http://{peer('llama-cpp')}:8080") + "/v1"
        depends.append("llama-cpp")
    # secret_key_file is an environment file (WEBUI_SECRET_KEY=..., as on NixOS). Without
    # one the image generates a key; keep it in the data volume so sessions survive a
    # re-created container.
    env["WEBUI_SECRET_KEY_FILE"] = "/app/backend/data/.webui_secret_key"
    env.update(_mirror_env(spec, hf=True, pypi=True))
    secret = _secret(svc, "secret_key_file")
    return _base(
        spec, svc, 8080,
        Health(f"curl --globoff -fsS {url}/health >/dev/null", start_period="120s"),
        data="/app/backend/data",
        secrets=(secret,) if secret else (),
        command=with_environment_file(secret, OPEN_WEBUI_COMMAND),
        env=env,
        depends_on=tuple(depends),
        host_network=host_network,
    )  # fmt: skip


_BUILDERS = {
    "ollama": _ollama,
    "llama-cpp": _llama_cpp,
    "postgres": _postgres,
    "redis": _redis,
    "qdrant": _qdrant,
    "open-webui": _open_webui,
}
