"""`stackgen doctor`: what this host lacks for the rendered stack, one line per check with the fix.

Programs are run (nix, podman, podman-compose, nvidia-smi), never assumed from PATH alone;
the CDI spec is looked for in CDI_DIRS. With a spec, checks the stack does not need are
skipped (no GPU checks for gpu.vendor none, no podman without compose/quadlet targets);
without one, GPU problems are warnings.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click

from . import echo_json, load

MIN_NIX = (2, 18)
MIN_PODMAN_QUADLET = (4, 4)
CDI_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
RUN_TIMEOUT = 20


@dataclass
class Check:
    name: str
    state: str  # ok | warn | FAIL | skip
    message: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.state:<5} {self.name}: {self.message}" + (f"; fix: {self.fix}" if self.fix else "")


@click.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(spec: Path | None, as_json: bool) -> None:
    """Check this host for what SPEC (default ./stack.yaml if present) needs. Exit 1 on any FAIL."""
    if spec is None and _exists(Path("stack.yaml")):
        spec = Path("stack.yaml")
    loaded = load(spec) if spec is not None else None
    checks = run_checks(loaded)
    if as_json:
        echo_json({"checks": [c.__dict__ for c in checks], "ok": not any(c.state == "FAIL" for c in checks)})
    else:
        for check in checks:
            click.echo(check.line())
    if any(c.state == "FAIL" for c in checks):
        raise SystemExit(1)


# Targets whose services run elsewhere (a cluster's nodes have the GPUs and runtimes): `k8s/`
# needs nothing of this host beyond kubectl, which the README names.
CLUSTER_TARGETS = {"kubernetes", "mirrors"}


@dataclass(frozen=True)
class Needs:
    """What a stack asks of this host, from its targets (everything, without a spec)."""

    nix: bool = True  # devshell, nixos, home-manager
    flakes: bool = True  # devshell: `nix develop` reads the flake
    podman: bool = True  # compose, quadlet, home-manager containers
    compose: bool = True  # podman-compose, for the compose target
    quadlet: bool = True  # podman >= 4.4 (quadlet target, home-manager containers)
    gpu: bool = True  # gpu.vendor nvidia
    cdi: bool = True  # a GPU in a container

    @classmethod
    def of(cls, spec) -> "Needs":
        from ..services import KINDS

        targets = set(spec.targets)
        # home-manager runs Ollama and `command:` apps natively, the rest as containers
        hm_containers = [k for k, svc in spec.services.items() if not KINDS[svc.kind].native_on_home(svc)] if "home-manager" in targets else []
        containers = list(spec.services) if targets & {"compose", "quadlet"} else hm_containers
        gpu_containers = [k for k in containers if spec.services[k].gpu]
        return cls(
            nix=bool(targets & {"devshell", "nixos", "home-manager", "fleet"}),
            flakes="devshell" in targets,
            podman=bool(containers),
            compose="compose" in targets and bool(spec.services),
            quadlet=("quadlet" in targets and bool(spec.services)) or bool(hm_containers),
            gpu=spec.gpu.nvidia and bool(targets - CLUSTER_TARGETS),
            cdi=spec.gpu.nvidia and bool(gpu_containers),
        )


def run_checks(spec=None) -> list[Check]:
    """The checks this stack needs; one it does not need is not run (a skip line says why)."""
    needs = Needs() if spec is None else Needs.of(spec)
    gpu_fail = "FAIL" if spec is not None else "warn"  # without a spec a GPU is optional
    checks = []
    if needs.nix:
        nix = nix_version()
        checks.append(nix)
        if nix.state == "FAIL" and "not found" in nix.message:
            checks += [Check("flakes", "skip", "needs nix"), Check("trusted user", "skip", "needs nix")]
        elif needs.flakes:
            config = nix_config()
            checks += [flakes(config), trusted(config)]
        else:
            checks += [Check(n, "skip", "not needed: the spec renders no devshell target") for n in ("flakes", "trusted user")]
    else:
        checks += [Check(n, "skip", "not needed: the spec renders no Nix target") for n in ("nix", "flakes", "trusted user")]
    if needs.podman:
        checks.append(podman(quadlet=needs.quadlet))
    else:
        checks.append(Check("podman", "skip", "not needed: the spec runs no container"))
    if needs.compose:
        checks.append(podman_compose())
    else:
        checks.append(Check("podman-compose", "skip", "not needed: the spec renders no compose target"))
    if needs.gpu:
        checks.append(_soften(driver(), gpu_fail))
    else:
        why = "gpu.vendor is none" if spec is None or not spec.gpu.nvidia else "the GPUs are the cluster's (kubernetes target)"
        checks.append(Check("nvidia driver", "skip", f"not needed: {why}"))
    if needs.cdi:
        checks.append(_soften(cdi(), gpu_fail))
    else:
        why = "gpu.vendor is none" if spec is None or not spec.gpu.nvidia else "no GPU service runs in a container"
        checks.append(Check("nvidia CDI", "skip", f"not needed: {why}"))
    return checks


def _exists(path: Path) -> bool:
    """Whether `path` exists; False (not a traceback) when it cannot be looked at (an
    unsearchable working directory)."""
    try:
        return path.exists()
    except OSError:
        return False


def _soften(check: Check, fail_state: str) -> Check:
    if check.state == "FAIL":
        check.state = fail_state
    return check


def _run(*args: str) -> tuple[int, str, str] | None:
    """(returncode, stdout, stderr), or None when the program is not installed. Output that
    is not UTF-8 is decoded with replacement characters, never a UnicodeDecodeError."""
    try:
        proc = subprocess.run(
            list(args), capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        return (124, "", f"{args[0]} did not finish in {RUN_TIMEOUT}s")
    except OSError as exc:  # not executable, not a program (ENOEXEC), ...
        return (126, "", f"{args[0]}: {(exc.strerror or str(exc)).lower()}")
    return proc.returncode, proc.stdout, proc.stderr


def _version(text: str) -> tuple[int, ...] | None:
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(p) for p in found.groups() if p is not None) if found else None


def _first_line(text: str) -> str:
    """The first line a program printed, escaped for the terminal and cut (errors.peer_text)."""
    from ..errors import peer_text

    return peer_text(next((line.strip() for line in text.splitlines() if line.strip()), "no output"))


NIX_INSTALL = "install Nix >= 2.18: https://nixos.org/download"


def _program_version(name: str, args: tuple[str, ...], fix: str) -> tuple[Check | None, tuple[int, ...]]:
    """Run `args` and read a version from its output; a FAIL Check when that is impossible."""
    got = _run(*args)
    if got is None:
        return Check(name, "FAIL", "not found", fix), ()
    rc, out, err = got
    version = _version(out)
    if rc != 0 or version is None:
        return Check(name, "FAIL", f"'{' '.join(args)}' failed: {_first_line(err or out)}", fix), ()
    return None, version


def nix_version() -> Check:
    failed, version = _program_version("nix", ("nix", "--version"), NIX_INSTALL)
    if failed:
        return failed
    shown = ".".join(map(str, version))
    if version[:2] < MIN_NIX:
        return Check("nix", "FAIL", f"Nix {shown} is older than 2.18, which current nixpkgs needs", "upgrade Nix: https://nixos.org/download")
    return Check("nix", "ok", f"Nix {shown}")


def nix_config() -> dict[str, str] | str:
    """`nix show-config` as a dict, or the reason it could not be read."""
    got = _run("nix", "--extra-experimental-features", "nix-command", "show-config")
    if got is None:
        return "nix not found"
    rc, out, err = got
    if rc != 0:
        return f"'nix show-config' failed: {_first_line(err)}"
    config = {}
    for line in out.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            config[key.strip()] = value.strip()
    return config


FLAKES_FIX = (
    "add 'experimental-features = nix-command flakes' to ~/.config/nix/nix.conf "
    '(NixOS: nix.settings.experimental-features = [ "nix-command" "flakes" ])'
)


def flakes(config: dict[str, str] | str) -> Check:
    if isinstance(config, str):
        return Check("flakes", "FAIL", config, FLAKES_FIX)
    features = config.get("experimental-features", "").split()
    missing = [f for f in ("nix-command", "flakes") if f not in features]
    if missing:
        return Check("flakes", "FAIL", f"experimental-features lacks {' and '.join(missing)}", FLAKES_FIX)
    return Check("flakes", "ok", "nix-command and flakes enabled")


def current_user() -> tuple[int, str | None]:
    """(uid, name) of the effective user, as the Nix daemon sees it: the name from the user
    database, not $USER. The name is None for a uid without an entry (a container started
    with --user 1234), where getpass.getuser() would raise."""
    uid = os.geteuid()
    try:
        return uid, pwd.getpwuid(uid).pw_name
    except KeyError:
        return uid, None


def trusted(config: dict[str, str] | str, user: str | None = None) -> Check:
    uid = None
    if user is None:
        uid, user = current_user()
    if isinstance(config, str):
        return Check("trusted user", "warn", config)
    entries = config.get("trusted-users", "").split()
    if user is None:  # Nix matches names: only '*' (everyone) or root's uid can be trusted
        if uid == 0 or "*" in entries:
            return Check("trusted user", "ok", f"uid {uid} is a trusted Nix user: the flake's substituters are used")
        return Check(
            "trusted user",
            "warn",
            f"uid {uid} has no entry in the user database, so Nix cannot find it in trusted-users "
            f"({' '.join(entries) or 'empty'}): Nix ignores the flake's nixConfig substituters (mirrors, CUDA cache)",
            "run as a user listed in /etc/passwd (containers: create the user in the image) and add it to trusted-users, "
            "or list the caches in substituters in /etc/nix/nix.conf",
        )
    if uid == 0 or user == "root" or "*" in entries or user in entries or any(_in_group(user, e[1:]) for e in entries if e.startswith("@")):
        return Check("trusted user", "ok", f"{user} is a trusted Nix user: the flake's substituters are used")
    return Check(
        "trusted user",
        "warn",
        f"{user} is not in trusted-users ({' '.join(entries) or 'empty'}): Nix ignores the flake's nixConfig substituters (mirrors, CUDA cache)",
        f"add {user} to trusted-users in /etc/nix/nix.conf and restart nix-daemon "
        f'(NixOS: nix.settings.trusted-users = [ "root" "{user}" ]), or list the caches in substituters there',
    )


def _in_group(user: str, group: str) -> bool:
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return False
    if user in entry.gr_mem:
        return True
    try:
        return pwd.getpwnam(user).pw_gid == entry.gr_gid
    except KeyError:
        return False


def podman(quadlet: bool = True) -> Check:
    fix = "install podman >= 4.4 (Debian/Ubuntu: apt install podman; NixOS: virtualisation.podman.enable = true)"
    failed, version = _program_version("podman", ("podman", "--version"), fix)
    if failed:
        return failed
    shown = ".".join(map(str, version))
    if quadlet and version[:2] < MIN_PODMAN_QUADLET:
        return Check("podman", "warn", f"podman {shown}: Quadlet units need podman >= 4.4 (compose.yaml works)", fix)
    return Check("podman", "ok", f"podman {shown}")


def podman_compose() -> Check:
    fix = "install podman-compose (apt install podman-compose, or pipx install podman-compose; NixOS: pkgs.podman-compose)"
    got = _run("podman-compose", "--version")
    if got is None:
        return Check("podman-compose", "FAIL", "not found", fix)
    rc, out, err = got
    found = re.search(r"podman-compose version:?\s*v?(\d+(?:\.\d+)+)", out + err)
    if rc != 0 or not found:
        return Check("podman-compose", "FAIL", f"'podman-compose --version' failed: {_first_line(err or out)}", fix)
    return Check("podman-compose", "ok", f"podman-compose {found.group(1)}")


DRIVER_FIX = 'install the NVIDIA driver (NixOS: services.xserver.videoDrivers = [ "nvidia" ]; hardware.nvidia.open = true)'


def driver() -> Check:
    got = _run("nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader")
    if got is None:
        return Check("nvidia driver", "FAIL", "nvidia-smi not found", DRIVER_FIX)
    rc, out, err = got
    if rc != 0:
        return Check("nvidia driver", "FAIL", f"nvidia-smi failed: {_first_line(out + err)}", DRIVER_FIX)
    rows = [line.split(",", 1) for line in out.splitlines() if line.strip()]
    if not rows:
        return Check("nvidia driver", "FAIL", "nvidia-smi lists no GPU", DRIVER_FIX)
    names = ", ".join(r[1].strip() for r in rows if len(r) > 1)
    return Check("nvidia driver", "ok", _first_line(f"driver {rows[0][0].strip()} ({names})"))


def cdi() -> Check:
    for folder in CDI_DIRS:
        for spec in _listing(folder):
            if spec.suffix in (".yaml", ".yml", ".json") and _names_nvidia(spec):
                return Check("nvidia CDI", "ok", f"{spec} declares nvidia.com/gpu")
    return Check(
        "nvidia CDI",
        "FAIL",
        f"no CDI spec for nvidia.com/gpu in {' or '.join(map(str, CDI_DIRS))}: containers cannot get the GPU",
        "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml (NixOS: hardware.nvidia-container-toolkit.enable = true)",
    )


def _listing(folder: Path) -> list[Path]:
    """The entries of a CDI folder; none when it is missing or cannot be read."""
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


MAX_CDI_SPEC = 4 << 20


def _names_nvidia(path: Path) -> bool:
    """Whether a CDI spec names nvidia.com/gpu: a regular file, read without blocking (a FIFO
    would hang the check) and at most MAX_CDI_SPEC bytes of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with os.fdopen(os.dup(fd), "rb") as fh:
            return b"nvidia.com/gpu" in fh.read(MAX_CDI_SPEC)
    except OSError:
        return False
    finally:
        os.close(fd)
