"""What each declared service looks like as a native process, for the `processes` target.

`plan` turns the spec's instances into a list of `Process`es, asking each instance's kind
(stackgen.services) for its entry (`Kind.process`), as containers.py does for containers. The
target only serializes the list into process-compose.yaml.

A process's `command` is a POSIX shell line (process-compose runs it with `bash -c`): every spec
value in it is one quoted word (`escape.sh_quote`). Two shell variables are set around it: the
state folder of the stack (`$STACKGEN_DATA_DIR`, one folder per instance below it) and the
rendered tree (`$STACKGEN_TREE`, where the helper scripts are), both exported by
nix/processes/services.sh before it starts process-compose. The target escapes what
process-compose itself would interpret (its `$VAR` expansion and Go templates).

Nothing here imports a target, Jinja2 or YAML.
"""

from __future__ import annotations

from .escape import sh_quote
from .records import dataclass, field, replace  # as dataclasses', without exec() or importing dataclasses
from .spec.model import Service, Spec

# The default state folder (SPEC: data_dir); a shell expression, evaluated by services.sh.
DEFAULT_DATA_DIR = "${XDG_DATA_HOME:-$HOME/.local/share}/stackgen/"
SCRIPTS = "nix/processes"  # the helper scripts, relative to the rendered tree
# process-compose's control socket in the state folder (services.sh: `-u`).
CONTROL_SOCKET = "process-compose.sock"
# sun_path, the most a Unix socket's path can hold, its terminating NUL included (Linux
# <sys/un.h>: 108; macOS: 104). A longer path fails deep inside the server that binds it
# (Go: "bind: invalid argument"), so stackgen checks it first (`socket_checks`, services.sh).
SUN_PATH = {"linux": 108, "darwin": 104}


@dataclass(frozen=True)
class Probe:
    """A readiness probe: a shell command that exits 0 once the service answers."""

    command: str
    initial_delay: int = 1
    period: int = 2
    timeout: int = 5
    failure_threshold: int = 150  # ~5 minutes of tries before process-compose gives up on it


@dataclass(frozen=True)
class Process:
    name: str
    command: str  # a shell line
    probe: Probe | None = None
    env: dict[str, str] = field(default_factory=dict)  # values only, never a secret (paths to secrets)
    depends_on: dict[str, str] = field(default_factory=dict)  # process -> process_healthy | process_started ...
    shutdown_signal: int | None = None  # None: process-compose's SIGTERM
    shutdown_timeout: int = 30
    oneshot: bool = False  # runs once to completion (a model pull)
    disabled: bool = False  # behind a compose profile: `up` leaves it off (see `plan`)
    packages: tuple[str, ...] = ()  # Nix expressions (in terms of `pkgs`) the process needs on PATH


def state(svc: Service) -> str:
    """The instance's state folder as a shell word: "$STACKGEN_DATA_DIR"/<name>."""
    return f'"$STACKGEN_DATA_DIR"/{sh_quote(svc.name)}'


def script(name: str) -> str:
    """A helper script of the rendered tree, as a shell word."""
    return f'"$STACKGEN_TREE"/{SCRIPTS}/{name}'


def words(*args: object) -> str:
    """Spec values as quoted shell words, joined."""
    return " ".join(sh_quote(a) for a in args)


def depends(spec: Spec, names) -> dict[str, str]:
    """process_healthy for every used service that has a readiness probe, else process_started."""
    from .services import KINDS

    out = {}
    for name in names:
        used = spec.services[name]
        out[name] = "process_healthy" if KINDS[used.kind].process_probe(spec, used) is not None else "process_started"
    return out


def plan(spec: Spec) -> list[Process]:
    """Every instance's process and its one-shot jobs, in the spec's service order.

    A service behind compose `profiles:` is an optional part of the stack, as on compose: its
    process and its jobs (a model pull would only fail without its server) are disabled, so
    `up` does not start them; `process start NAME` on the running stack, or `up NAME...`, does.
    A process that starts by default does not wait for a disabled one it uses (process-compose
    refuses that dependency in a strict file: "dependency process ... is disabled"): it starts
    without it, as compose's `required: false` lets it (targets/compose.py). Disabled processes
    keep their dependencies."""
    from .services import KINDS

    out: list[Process] = []
    for svc in spec.services.values():
        kind = KINDS[svc.kind]
        procs = [kind.process(spec, svc), *kind.process_jobs(spec, svc)]
        out += [replace(p, disabled=True) for p in procs] if svc.profiles else procs
    off = {p.name for p in out if p.disabled}
    for i, p in enumerate(out):
        if not p.disabled and off & p.depends_on.keys():
            out[i] = replace(p, depends_on={n: c for n, c in p.depends_on.items() if n not in off})
    return out


def data_dir_expression(spec: Spec) -> str:
    """The shell expression services.sh uses for the state folder when STACKGEN_DATA_DIR is
    unset: the spec's data_dir (one quoted word, `~/` as "$HOME"), else the default."""
    if spec.data_dir is None:
        return DEFAULT_DATA_DIR + sh_quote(spec.name)
    if spec.data_dir.startswith("~/"):
        return '"$HOME"/' + sh_quote(spec.data_dir[2:] or ".")
    return sh_quote(spec.data_dir)


def native_url(svc: Service, path: str = "") -> str:
    """http://<address a local client uses>:<port><path> (wiring's native endpoint)."""
    from .services.wiring import native_endpoint

    return f"http://{native_endpoint(svc).authority}{path}"


# The environment-file loader the containers use (containers.ENV_FILE_LOADER), run natively:
# `with_environment_file(path, "program args")` exports the file's NAME=value lines and execs.
def with_environment_file(path: str | None, command: str) -> str:
    from .containers import ENV_FILE_LOADER

    if not path:
        return f"exec {command}"
    return f"exec sh -c {sh_quote(ENV_FILE_LOADER)} stackgen-env {sh_quote(path)} {command}"


def sockets(services) -> list[str]:
    """The Unix sockets the stack creates, relative to its state folder: the control socket,
    then each instance's (its kind's `process_sockets`), in the spec's service order."""
    from .services import KINDS

    return [CONTROL_SOCKET, *(rel for svc in services.values() for rel in KINDS[svc.kind].process_sockets(svc))]


def socket_path_max(systems) -> int:
    """The longest socket path (in bytes) on every one of `systems` (x86_64-linux, ...)."""
    return min(SUN_PATH[system.rsplit("-", 1)[1]] for system in systems) - 1


def socket_checks(c, data_dir: str, services, systems) -> None:
    """Validation: with a literal data_dir, each socket's path fits sun_path on every system.
    (A data_dir under ~/, the default one and STACKGEN_DATA_DIR are known only when the stack
    starts: services.sh checks them there.)"""
    if data_dir.startswith("~/"):
        return
    limit = socket_path_max(systems)
    for rel in sockets(services):
        size = len(f"{data_dir}/{rel}".encode())
        if size > limit:
            c.error(
                ("data_dir",),
                f"data_dir is too long for the processes target: the Unix socket <data_dir>/{rel} would be {size} bytes, and a socket path holds at most {limit}",
                f"choose a data_dir of at most {limit - size + len(data_dir.encode())} bytes, or drop processes from targets",
            )
            return
