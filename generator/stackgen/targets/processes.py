r"""The `processes` target: process-compose.yaml (every service as a native process), the helper
scripts under nix/processes/, and nix/services.nix (the flake's `nix run .#services`).

The processes come from procplan (each kind's `process`); this module only serializes them.
process-compose reads its file in two passes that would change a spec value: before parsing
the YAML it substitutes variables in the whole text (drone/envsubst: `$VAR`, `${VAR}`, `$$`
stands for `$`, and `\\` for `\`), and after parsing it renders command, environment, log
location and probes as Go templates (`{{ ... }}`). Values get the template escape, the emitted
text the substitution escape (`_substitution_safe`), so the shell that runs a command sees
exactly the words stackgen quoted for it (tests/unit/test_processes.py proves it with the real
process-compose).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import __version__, mirrordata, procplan
from ..procplan import Process
from ..services import postgres
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates

FILE = "process-compose.yaml"
# What services.sh and the probes run besides the services: process-compose, bash, curl (http
# probes), sed/grep (the Redis password file), coreutils.
WRAPPER_PACKAGES = ("pkgs.process-compose", "pkgs.bash", "pkgs.coreutils", "pkgs.gnused", "pkgs.gnugrep", "pkgs.curl")
# process-compose's file format version (its schema's `version`; 0.5 is the current one)
FORMAT = "0.5"


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    plan = procplan.plan(spec)
    files = {FILE: _header(spec) + _substitution_safe(_dump(_project(spec, plan)))}
    files[f"{procplan.SCRIPTS}/services.sh"] = tpl(
        "processes/services.sh.j2",
        data_dir=procplan.data_dir_expression(spec),
        control_socket=procplan.CONTROL_SOCKET,
        sockets=procplan.words(*procplan.sockets(spec.services)),
        sun_path=procplan.SUN_PATH,
    )
    pgs = spec.of_kind("postgres")
    if pgs:
        files[f"{procplan.SCRIPTS}/postgres.sh"] = tpl("processes/postgres.sh.j2", socket_dir=postgres.PROCESS_SOCKET_DIR)
    for svc in pgs:
        sql = postgres.process_init_sql(svc)
        if sql:
            files[postgres.process_init_path(svc)] = sql
    # The wrapper's PATH: its own tools, the services' packages, then the spec's (each once).
    packages = list(dict.fromkeys([*WRAPPER_PACKAGES, *(p for proc in plan for p in proc.packages), *(f"pkgs.{p}" for p in spec.packages)]))
    files["nix/services.nix"] = tpl(
        "processes/services.nix.j2",
        packages=packages,
        env=shell_env(spec),
        driver_hook=spec.gpu.nvidia and "devshell" in spec.targets,  # driver-libs.sh is the dev shell's
    )
    return files


def shell_env(spec: Spec) -> dict[str, str]:
    """The dev shell's variables (nix/devshell.nix) the wrapper exports, UV_PYTHON aside."""
    env = {}
    if spec.python.uv:
        env["UV_PYTHON_DOWNLOADS"] = "never"
    if mirrordata.pypi_index(spec):
        env["UV_DEFAULT_INDEX"] = env["PIP_INDEX_URL"] = mirrordata.pypi_index(spec)
    if mirrordata.hf_endpoint(spec):
        env["HF_ENDPOINT"] = mirrordata.hf_endpoint(spec)
    return {**env, **spec.env}


def _header(spec: Spec) -> str:
    return (
        f'# The services of "{spec.name}" as native processes (rendered by stackgen {__version__}).\n'
        "# Change stack.yaml and re-render instead of editing. Start: nix run .#services\n"
        "# (it sets STACKGEN_DATA_DIR and STACKGEN_TREE; see nix/processes/services.sh).\n"
    )


def _project(spec: Spec, plan: list[Process]) -> dict[str, Any]:
    return {
        "version": FORMAT,
        "is_strict": True,  # an unknown key is an error, never ignored
        "processes": {proc.name: _process(proc) for proc in plan},
    }


def _process(proc: Process) -> dict[str, Any]:
    out: dict[str, Any] = {"command": _pc(proc.command)}
    if proc.disabled:
        out["disabled"] = True
    if proc.env:
        out["environment"] = [_pc(f"{name}={value}") for name, value in proc.env.items()]
    out["log_location"] = LOG_LOCATION.format(name=proc.name)
    if proc.depends_on:
        out["depends_on"] = {name: {"condition": cond} for name, cond in proc.depends_on.items()}
    if proc.probe is not None:
        p = proc.probe
        out["readiness_probe"] = {
            "exec": {"command": _pc(p.command)},
            "initial_delay_seconds": p.initial_delay,
            "period_seconds": p.period,
            "timeout_seconds": p.timeout,
            "failure_threshold": p.failure_threshold,
        }
    if proc.oneshot:
        out["availability"] = {"restart": "on_failure", "backoff_seconds": 5, "max_restarts": 3}
    else:
        out["availability"] = {"restart": "on_failure", "backoff_seconds": 2, "max_restarts": 5}
        shutdown: dict[str, Any] = {"timeout_seconds": proc.shutdown_timeout}
        if proc.shutdown_signal is not None:
            shutdown["signal"] = proc.shutdown_signal
        out["shutdown"] = shutdown
    return out


def _pc(text: str) -> str:
    """`text` with every `{{` as a Go template action that prints `{{`."""
    return text.replace("{{", '{{"{{"}}')


# The one string process-compose is to substitute in: each process's log file under the state
# folder (the variable services.sh exports). Names are [a-z][a-z0-9-]*: nothing to escape.
LOG_LOCATION = "${{STACKGEN_DATA_DIR}}/logs/{name}.log"
LOG_LINE = re.compile(r"    log_location: \$\{STACKGEN_DATA_DIR\}/logs/[a-z][a-z0-9-]*\.log")


def _substitution_safe(text: str) -> str:
    """The YAML text with every `\\` and `$` doubled, which process-compose's substitution turns
    back into the text the emitter wrote; only the log_location lines keep their variable. (The
    emitter writes every scalar on one line: a line like that is a process's log_location key.)"""
    return "".join(
        line if LOG_LINE.fullmatch(line.rstrip("\n")) else line.replace("\\", "\\\\").replace("$", "$$")
        for line in text.splitlines(keepends=True)
    )


def _dump(data: dict) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=2**31 - 1, default_flow_style=False)
