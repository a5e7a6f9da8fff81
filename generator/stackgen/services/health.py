"""A service's health, described once: each kind's `Kind.health` (or the spec's `health:` for a
`container` or an `app`) returns a `Check`, and this module turns it into the form each target
runs, so compose, Quadlet, home-manager, Kubernetes and process-compose check the same thing:

  in_container  the healthcheck command run inside the container, at the address the service
                listens on there (compose, Quadlet, home-manager; Kubernetes runs `probe` itself
                where the check is plain HTTP or TCP, else the command);
  on_host       the readiness probe of the native process (the processes target), at the
                address a local client uses (wiring.native_endpoint), with its secrets at their
                paths on the host.

Nothing here imports a target, Jinja2 or YAML.
"""

from __future__ import annotations

from ..records import dataclass
from typing import TYPE_CHECKING, Callable

from ..escape import sh_quote
from .base import Endpoint

if TYPE_CHECKING:
    from ..containers import Health
    from ..procplan import Probe


@dataclass(frozen=True)
class Place:
    """Where a check runs: the service's address and port there, and how a secret option (a
    *_file path in the spec) is read there, as a shell word."""

    at: Endpoint
    secret: Callable[[str], str]


@dataclass(frozen=True)
class Check:
    """What answers once the service is ready: exactly one of `http` (GET <path> answers 2xx),
    `tcp` (the port accepts a connection) or `command` (a shell command, given the place, exits
    0: the service's own client, such as pg_isready)."""

    http: str | None = None
    tcp: bool = False
    command: Callable[[Place], str] | None = None
    # How the image asks over HTTP: "any" (wget, else curl: an image stackgen does not know),
    # "curl", "bash" (bash's /dev/tcp: the image has neither), or a command of the image's own
    # that asks the same API (Ollama's image has no HTTP client: `ollama list`).
    image_client: str = "any"
    # Seconds the service may take to answer the first time (a model loading, a first start
    # that initialises its data): the containers' start period. A native process gets twice
    # as long and at least five minutes: it may be building its data folder on a slow disk.
    startup: int = 30


PROCESS_PERIOD = 2  # seconds between two tries of a native readiness probe


def in_container(check: Check, port: int, secret: Callable[[str], str], host: str = "127.0.0.1") -> "Health":
    """The check as a container healthcheck (and, for HTTP and TCP, a probe Kubernetes runs)."""
    from ..containers import Health

    place = Place(Endpoint(host, port), secret)
    url = f"http://{place.at.authority}{check.http}" if check.http is not None else ""
    if check.command is not None:
        command = check.command(place)
    elif check.http is not None and check.image_client == "any":
        command = f"wget -q -O /dev/null {sh_quote(url)} || curl --globoff -fsS -o /dev/null {sh_quote(url)}"
    elif check.http is not None and check.image_client == "curl":
        command = f"curl --globoff -fsS {sh_quote(url)} >/dev/null"
    elif check.http is not None and check.image_client == "bash":
        request = f'printf "GET {check.http} HTTP/1.0\\r\\n\\r\\n"'
        command = "bash -c " + sh_quote(f'exec 3<>/dev/tcp/{sh_quote(place.at.host)}/{port} && {request} >&3 && grep -q " 200 " <&3')
    elif check.http is not None:
        command = check.image_client
    else:
        host = sh_quote(place.at.host)
        command = f"nc -z {host} {port} || bash -c {sh_quote(f'exec 3<>/dev/tcp/{host}/{port}')}"
    probe = ("http", check.http, port) if check.http is not None else ("tcp", None, port) if check.tcp else None
    return Health(command, start_period=f"{check.startup}s", probe=probe)


def on_host(check: Check, at: Endpoint, secret: Callable[[str], str]) -> "Probe":
    """The check as the readiness probe of a native process (curl is on the wrapper's PATH)."""
    from ..procplan import Probe

    if check.command is not None:
        command = check.command(Place(at, secret))
    elif check.http is not None:
        command = f"curl --globoff -fsS -o /dev/null --max-time 4 {sh_quote(f'http://{at.authority}{check.http}')}"
    else:
        command = f"exec 3<>/dev/tcp/{sh_quote(at.host)}/{at.port}"
    return Probe(command, period=PROCESS_PERIOD, failure_threshold=max(2 * check.startup, 300) // PROCESS_PERIOD)


def from_spec(probe: tuple | None) -> Check | None:
    """The spec's `health:` of a `container` or an `app`: ("http", path) | ("tcp", None) |
    ("command", words) (spec.generic's checker) as a Check."""
    if probe is None:
        return None
    kind, arg = probe
    if kind == "http":
        return Check(http=arg)
    if kind == "tcp":
        return Check(tcp=True)
    return Check(command=lambda place, words=tuple(arg): _shell_words(words))


def _shell_words(words: tuple[str, ...]) -> str:
    import shlex  # only a spec with a command health check needs it

    return shlex.join(words)


def wait_script(waits: list[tuple[str, "Probe"]]) -> str:
    """A bash script that waits until each probe passes, in order, giving each its budget (a
    systemd ExecStartPre=/ExecStartPost=: the unit counts as started, and the units ordered
    after it start, only once they pass); it exits 1 naming the service that did not answer.
    Each probe runs in a subshell (a TCP probe's `exec` redirection stays there)."""
    lines = ["set -u"]
    for name, probe in waits:
        budget = probe.failure_threshold * probe.period
        lines += [
            f"deadline=$((SECONDS + {budget}))",
            f"until ( {probe.command} ) >/dev/null 2>&1; do",
            f'  if [ "$SECONDS" -ge "$deadline" ]; then echo {sh_quote(f"{name} did not become healthy within {budget} s")} >&2; exit 1; fi',
            f"  sleep {probe.period}",
            "done",
        ]
    return "\n".join(lines) + "\n"


def wait_seconds(waits: list[tuple[str, "Probe"]]) -> int:
    """The longest the waits of one `wait_script` take."""
    return sum(probe.failure_threshold * probe.period for _, probe in waits)


def unit_waits(svc, used: list) -> dict:
    """The waits of a native unit that runs `svc` (an `app` on NixOS or home-manager), whose
    `uses:` are the services `used` with units on the same machine:
      before  the used services checked over HTTP or TCP, at their addresses here: nixpkgs'
              Ollama, llama.cpp, Qdrant and Open WebUI units count as started once the process
              runs, not once it answers (PostgreSQL and Redis are Type=notify: ready when they
              report it; their checks read secrets the app's unit does not hold);
      after   the app's own `health:`, so that the units ordered after it wait for it;
    as {"wait_before": script, "wait_after": script (None: no wait), "timeout": the seconds
    TimeoutStartSec= must allow: systemd arms it anew for each ExecStartPre=/ExecStartPost=
    command, so the longer of the two waits, and a margin}.
    """
    from . import KINDS
    from .wiring import native_endpoint

    def no_secret(option: str) -> str:
        raise AssertionError(f"an HTTP, TCP or app check reads no secret ({option})")

    before = []
    for dep in used:
        check = KINDS[dep.kind].health(dep)
        if check is not None and (check.http is not None or check.tcp) and dep.port is not None:
            before.append((dep.name, on_host(check, native_endpoint(dep), no_secret)))
    own = KINDS[svc.kind].health(svc)
    after = [(svc.name, on_host(own, native_endpoint(svc), no_secret))] if own is not None else []
    return {
        "wait_before": wait_script(before) if before else None,
        "wait_after": wait_script(after) if after else None,
        "timeout": max(wait_seconds(before), wait_seconds(after)) + 90 if before or after else None,
    }
