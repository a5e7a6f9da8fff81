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

from dataclasses import field
from .records import dataclass  # dataclasses.dataclass without per-class exec()

from .escape import sh_quote
from .spec.model import Service, Spec

# The default state folder (SPEC: data_dir); a shell expression, evaluated by services.sh.
DEFAULT_DATA_DIR = "${XDG_DATA_HOME:-$HOME/.local/share}/stackgen/"
SCRIPTS = "nix/processes"  # the helper scripts, relative to the rendered tree


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
    """Every instance's process and its one-shot jobs, in the spec's service order."""
    from .services import KINDS

    out: list[Process] = []
    for svc in spec.services.values():
        kind = KINDS[svc.kind]
        out.append(kind.process(spec, svc))
        out += kind.process_jobs(spec, svc)
    return out


def data_dir_expression(spec: Spec) -> str:
    """The shell expression services.sh uses for the state folder when STACKGEN_DATA_DIR is
    unset: the spec's data_dir (one quoted word, `~/` as "$HOME"), else the default."""
    if spec.data_dir is None:
        return DEFAULT_DATA_DIR + sh_quote(spec.name)
    if spec.data_dir.startswith("~/"):
        return '"$HOME"/' + sh_quote(spec.data_dir[2:] or ".")
    return sh_quote(spec.data_dir)


def http_probe(url: str, **kw) -> Probe:
    """Ready once `url` answers 2xx (curl is on the wrapper's PATH)."""
    return Probe(f"curl --globoff -fsS -o /dev/null --max-time 4 {sh_quote(url)}", **kw)


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
