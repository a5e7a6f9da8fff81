"""`stackgen doctor`: the programs it runs are faked with pytest-subprocess (fake_process)."""

from __future__ import annotations

import grp
import json
import pwd
import subprocess

import pytest
from click.testing import CliRunner

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
    (tmp_path / "stack.yaml").write_text("version: 1\nname: x\ngpu: {vendor: nvidia}\n")
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
    assert "skip  podman: not needed: the spec renders no compose or quadlet target" in result.output
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
