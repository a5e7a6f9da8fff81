"""`stackgen doctor`: the programs it runs are faked with pytest-subprocess (fake_process)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import require_tool
from stackgen.cli import cli
from stackgen.commands import doctor as doc

NIX_CONFIG = ["nix", "--extra-experimental-features", "nix-command", "show-config"]
NVIDIA_SMI = ["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"]
GOOD_CONFIG = "experimental-features = flakes nix-command\nsubstituters = https://cache.nixos.org/\ntrusted-users = root alice\n"


@pytest.fixture
def host(fake_process, tmp_path, monkeypatch):
    """A healthy host: every program answers; alice is trusted; a CDI spec exists."""
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    (cdi / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: all\n")
    monkeypatch.setattr(doc, "CDI_DIRS", (cdi, tmp_path / "var-run-cdi"))
    monkeypatch.setattr(doc, "current_user", lambda: (1000, "alice"))
    monkeypatch.chdir(tmp_path)
    answers = {
        ("nix", "--version"): "nix (Nix) 2.24.9\n",
        tuple(NIX_CONFIG): GOOD_CONFIG,
        ("podman", "--version"): "podman version 5.2.1\n",
        ("podman-compose", "--version"): "podman-compose version 1.2.0\npodman version 5.2.1\n",
        tuple(NVIDIA_SMI): "550.54.14, NVIDIA GeForce RTX 4090\n",
    }

    def set_answer(cmd, stdout="", returncode=0, stderr="", missing=False):
        answers[tuple(cmd)] = (stdout, returncode, stderr, missing)

    def install():
        for cmd, answer in answers.items():
            stdout, rc, stderr, missing = answer if isinstance(answer, tuple) else (answer, 0, "", False)
            if missing:
                fake_process.register(list(cmd), callback=_not_found, occurrences=5)
            else:
                fake_process.register(list(cmd), stdout=stdout, stderr=stderr, returncode=rc, occurrences=5)

    return type("Host", (), {"set": staticmethod(set_answer), "install": staticmethod(install), "cdi": cdi, "fp": fake_process})


def _not_found(process):
    raise FileNotFoundError(2, "No such file or directory", process.args[0])


def run(*args):
    return CliRunner().invoke(cli, ["doctor", *args])


def test_healthy_host(host):
    host.install()
    result = run()
    assert result.exit_code == 0, result.output
    assert result.output == (
        "ok    nix: Nix 2.24.9\n"
        "ok    flakes: nix-command and flakes enabled\n"
        "ok    trusted user: alice is a trusted Nix user: the flake's substituters are used\n"
        "ok    podman: podman 5.2.1\n"
        "ok    podman-compose: podman-compose 1.2.0\n"
        "ok    nvidia driver: driver 550.54.14 (NVIDIA GeForce RTX 4090)\n"
        f"ok    nvidia CDI: {host.cdi}/nvidia.yaml declares nvidia.com/gpu\n"
    )


def test_nothing_installed(host):
    for cmd in (["nix", "--version"], NIX_CONFIG, ["podman", "--version"], ["podman-compose", "--version"], NVIDIA_SMI):
        host.set(cmd, missing=True)
    (host.cdi / "nvidia.yaml").unlink()
    host.install()
    result = run("--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.output)["checks"]}
    assert checks["nix"]["state"] == "FAIL" and checks["nix"]["fix"] == "install Nix >= 2.18: https://nixos.org/download"
    assert checks["flakes"]["state"] == checks["trusted user"]["state"] == "skip"
    assert checks["podman"]["state"] == "FAIL" and "virtualisation.podman.enable = true" in checks["podman"]["fix"]
    assert checks["podman-compose"]["state"] == "FAIL"
    # no spec: a GPU is optional, so its checks warn
    assert checks["nvidia driver"]["state"] == "warn" and checks["nvidia driver"]["message"] == "nvidia-smi not found"
    assert checks["nvidia CDI"]["state"] == "warn" and "nvidia-ctk cdi generate" in checks["nvidia CDI"]["fix"]


def test_old_nix_without_flakes(host):
    host.set(["nix", "--version"], "nix (Nix) 2.8.0\n")
    host.set(NIX_CONFIG, "experimental-features = \ntrusted-users = root\n")
    host.install()
    result = run()
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "FAIL  nix: Nix 2.8.0 is older than 2.18, which current nixpkgs needs; fix: upgrade Nix: https://nixos.org/download"
    assert lines[1].startswith("FAIL  flakes: experimental-features lacks nix-command and flakes; fix: add 'experimental-features = nix-command flakes'")
    assert lines[2].startswith("warn  trusted user: alice is not in trusted-users (root): Nix ignores the flake's nixConfig substituters")
    assert 'nix.settings.trusted-users = [ "root" "alice" ]' in lines[2]


def test_driver_not_loaded_and_old_podman(host, tmp_path):
    host.set(NVIDIA_SMI, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n", returncode=9)
    host.set(["podman", "--version"], "podman version 4.3.1\n")
    host.install()
    (tmp_path / "stack.yaml").write_text("version: 1\nname: x\ngpu: {vendor: nvidia}\nservices:\n  ollama: {}\n")
    result = run()  # ./stack.yaml wants a GPU: driver problems are failures
    assert result.exit_code == 1
    assert "FAIL  nvidia driver: nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." in result.output
    assert "warn  podman: podman 4.3.1: Quadlet units need podman >= 4.4 (compose.yaml works)" in result.output


def test_spec_without_gpu_or_containers_skips_them(host, tmp_path):
    host.install()
    spec = tmp_path / "cpu.yaml"
    spec.write_text("version: 1\nname: x\ntargets: [devshell]\n")
    result = run(str(spec))
    assert result.exit_code == 0, result.output
    assert "skip  nvidia driver: not needed: gpu.vendor is none" in result.output
    assert "skip  podman: not needed: the spec runs no container" in result.output
    assert not any(call[0] in ("podman", "nvidia-smi") for call in host.fp.calls), "skipped checks run nothing"


def test_trusted_through_a_group():
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid).gr_name
    assert doc.trusted({"trusted-users": f"root @{group}"}, user="nobody").state == "ok"
    assert doc.trusted({"trusted-users": "root @no-such-group"}, user="nobody").state == "warn"
    assert doc.trusted({"trusted-users": "*"}, user="nobody").state == "ok"


def test_a_hanging_program_is_a_failure(host, monkeypatch):
    monkeypatch.setattr(doc, "RUN_TIMEOUT", 0.2)

    def hang(process):  # what subprocess.run raises when the program outlives its timeout
        raise subprocess.TimeoutExpired(process.args, 0.2)

    host.fp.register(["nix", "--version"], callback=hang)
    check = doc.nix_version()
    assert check.state == "FAIL" and check.message == "'nix --version' failed: nix did not finish in 0.2s"


def test_a_compose_only_stack_needs_no_nix(host, tmp_path):
    # the host of the first-hour report: Debian's Nix 2.8 without flakes, podman 4.3
    host.set(["nix", "--version"], "nix (Nix) 2.8.0\n")
    host.set(NIX_CONFIG, "experimental-features = \n")
    host.set(["podman", "--version"], "podman version 4.3.1\n")
    host.install()
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: x\ntargets: [compose]\nservices:\n  redis: {}\n")
    result = run(str(spec))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "skip  nix: not needed: the spec renders no Nix target",
        "skip  flakes: not needed: the spec renders no Nix target",
        "skip  trusted user: not needed: the spec renders no Nix target",
    ]
    assert "ok    podman: podman 4.3.1" in result.output  # compose needs no Quadlet, so no warning
    assert "ok    podman-compose: podman-compose 1.2.0" in result.output
    assert not any(call[0] == "nix" for call in host.fp.calls), "a check that is not needed is not run"


def test_a_gpu_stack_without_containers_needs_no_cdi(host, tmp_path):
    (host.cdi / "nvidia.yaml").unlink()
    host.install()
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: x\ngpu: {vendor: nvidia}\ntargets: [devshell, nixos]\nservices:\n  ollama: {}\n")
    result = run(str(spec))
    assert result.exit_code == 0, result.output
    assert "skip  nvidia CDI: not needed: no GPU service runs in a container" in result.output
    assert "ok    nvidia driver: driver 550.54.14" in result.output
    assert "skip  podman: not needed: the spec runs no container" in result.output
    assert "skip  podman-compose: not needed: the spec renders no compose target" in result.output
    assert "ok    flakes" in result.output


def test_home_manager_gpu_containers_need_cdi_and_quadlet_podman(host, tmp_path):
    (host.cdi / "nvidia.yaml").unlink()
    host.set(["podman", "--version"], "podman version 4.3.1\n")
    host.install()
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: x\ngpu: {vendor: nvidia}\ntargets: [home-manager]\nservices:\n  llama-cpp: {model: /m/a.gguf}\n")
    result = run(str(spec))
    assert result.exit_code == 1
    assert "FAIL  nvidia CDI: no CDI spec for nvidia.com/gpu" in result.output
    assert "warn  podman: podman 4.3.1: Quadlet units need podman >= 4.4" in result.output
    assert "skip  flakes: not needed: the spec renders no devshell target" in result.output
    # home-manager runs Ollama natively: an Ollama-only home-manager stack needs no podman
    spec.write_text("version: 1\nname: x\ngpu: {vendor: nvidia}\ntargets: [home-manager]\nservices:\n  ollama: {}\n")
    result = run(str(spec))
    assert "skip  podman: not needed: the spec runs no container" in result.output
    assert "skip  nvidia CDI: not needed: no GPU service runs in a container" in result.output


# -- doctor never tracebacks (issue 10, item 13) -------------------------------------------------


def _doctor_child(env: dict, cwd, *prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "stackgen", "doctor", "--json"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _unused_uid() -> int:
    uid = 54321
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def test_a_uid_without_a_passwd_entry(tmp_path):
    """A container started with --user N: getpwuid() fails and there is no USER. doctor runs in
    a user namespace as such a uid (real getpwuid, real nix), first with a HOME, then without."""
    unshare = require_tool("unshare", "doctor runs as a uid without a passwd entry")
    require_tool("nix", "the trusted-user check asks the real nix")
    uid = _unused_uid()
    as_uid = [unshare, "--user", f"--map-user={uid}", f"--map-group={uid}"]
    probe = subprocess.run([*as_uid, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.strip()}")
    (tmp_path / "home").mkdir()
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    with_home = _doctor_child({"PATH": path, "HOME": str(tmp_path / "home")}, tmp_path, *as_uid)
    assert "Traceback" not in with_home.stderr, with_home.stderr
    assert with_home.returncode in (0, 1), with_home.stderr
    checks = {c["name"]: c for c in json.loads(with_home.stdout)["checks"]}
    assert checks["trusted user"]["state"] == "warn"
    assert checks["trusted user"]["message"].startswith(f"uid {uid} has no entry in the user database, so Nix cannot find it in trusted-users")

    locked = tmp_path / "locked"  # a working directory it may not search: is ./stack.yaml there?
    locked.mkdir(mode=0o000)
    try:
        bare = _doctor_child({"PATH": path}, locked, *as_uid)  # no HOME, USER or LOGNAME either
    finally:
        locked.chmod(0o755)
    assert "Traceback" not in bare.stderr, bare.stderr
    assert bare.returncode in (0, 1) and len(json.loads(bare.stdout)["checks"]) == 7


def test_uid_without_a_name_is_trusted_only_through_a_star(monkeypatch):
    monkeypatch.setattr(doc, "current_user", lambda: (4321, None))
    assert doc.trusted({"trusted-users": "root @wheel"}).state == "warn"
    assert doc.trusted({"trusted-users": "*"}).message == "uid 4321 is a trusted Nix user: the flake's substituters are used"
    monkeypatch.setattr(doc, "current_user", lambda: (0, None))
    assert doc.trusted({"trusted-users": ""}).state == "ok"  # root's uid is always trusted


def test_broken_programs_unreadable_folders_and_hostile_output(tmp_path):
    """Real programs on PATH that print invalid UTF-8 and terminal escapes, and one that cannot
    be executed: each is a check's message, escaped."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "nix": "#!/bin/sh\nprintf 'nix (Nix) 2.24.9\\377\\n'\n",
        "nvidia-smi": "#!/bin/sh\nprintf '550.54.14, \\033]52;c;cm0gLXJmIH4=\\007\\033[2JEvil GPU\\n'\n",
        "podman": "not a program\n",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o644 if name == "podman" else 0o755)
    (bin_dir / "podman").chmod(0o755)  # executable, but no #! and not ELF: ENOEXEC
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "stackgen", "doctor"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    lines = {line.split(":")[0][6:]: line for line in proc.stdout.splitlines()}
    assert lines["nix"] == "ok    nix: Nix 2.24.9"
    assert "\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2JEvil GPU" in lines["nvidia driver"]
    assert lines["podman"].startswith("FAIL  podman: 'podman --version' failed: podman: exec format error")


def test_a_fifo_in_the_cdi_folder_does_not_hang(tmp_path, monkeypatch):
    import threading

    cdi = tmp_path / "cdi"
    cdi.mkdir()
    os.mkfifo(cdi / "nvidia.yaml")
    (cdi / "z.yaml").write_text("kind: nvidia.com/gpu\n")
    monkeypatch.setattr(doc, "CDI_DIRS", (cdi,))
    found = []
    worker = threading.Thread(target=lambda: found.append(doc.cdi()), daemon=True)
    worker.start()
    worker.join(10)
    assert found, "the CDI check hung on a FIFO"
    assert found[0].state == "ok" and found[0].message == f"{cdi}/z.yaml declares nvidia.com/gpu"


def test_a_kubernetes_only_gpu_stack_needs_nothing_of_this_host(host, tmp_path):
    """The kubernetes target's services run on the cluster's nodes: no Nix, podman, driver or CDI here."""
    (host.cdi / "nvidia.yaml").unlink()
    host.install()
    spec = tmp_path / "s.yaml"
    spec.write_text("version: 1\nname: x\ngpu: {vendor: nvidia}\ntargets: [kubernetes]\nservices:\n  ollama: {}\n")
    result = run(str(spec))
    assert result.exit_code == 0, result.output
    assert "skip  nvidia driver: not needed: the GPUs are the cluster's (kubernetes target)" in result.output
    assert "skip  nvidia CDI: not needed: no GPU service runs in a container" in result.output
    assert "skip  podman: not needed: the spec runs no container" in result.output
    assert not host.fp.calls, "a check that is not needed is not run"
