"""The fleet target outside Nix (tests/nix/test_fleet.py evaluates its hosts): hosts/deploy.sh
run by bash with a fake nixos-rebuild that records its argv, the user-owned hosts/<host>/hardware.nix (written once, never again, never
flagged by --check), and what `hosts:` changes in the spec (fleet joins the default targets)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import golden_cases, render_spec, render_text, require_tool
from stackgen.cli import cli

FLEET = golden_cases()["fleet-3"]
SPEC_3 = FLEET.read_text()


@pytest.fixture
def deploy(tmp_path):
    """Run the rendered hosts/deploy.sh with a fake nixos-rebuild first on PATH; returns
    (run(args) -> CompletedProcess, the argv lines the fake recorded)."""
    bash = require_tool("bash")
    tree = tmp_path / "tree"
    render_spec(FLEET, tree)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv.log"
    fake = bin_dir / "nixos-rebuild"
    # one line per call, each argument between < and >, so that word splitting shows
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "<%s>" "$a"; done >> {log}\necho >> {log}\n')
    fake.chmod(0o755)

    def run(*args: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
        return subprocess.run([bash, str(tree / "hosts/deploy.sh"), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)

    def calls() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    return run, calls, tree


def test_deploy_script_parses_and_passes_shellcheck(tmp_path):
    render_spec(FLEET, tmp_path)
    script = tmp_path / "hosts/deploy.sh"
    assert subprocess.run([require_tool("bash"), "-n", str(script)]).returncode == 0
    shellcheck = require_tool("shellcheck", "hosts/deploy.sh is linted by shellcheck")
    proc = subprocess.run([shellcheck, "-s", "bash", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_deploy_runs_nixos_rebuild_per_host_in_dependency_order(deploy):
    run, calls, tree = deploy
    proc = run()
    assert proc.returncode == 0, proc.stderr
    flake = str(tree.resolve())
    # app-1 uses services of gpu-1 and db-1: it comes last
    assert calls() == [
        f"<switch><--flake><{flake}#gpu-1><--target-host><root@10.0.0.11>",
        f"<switch><--flake><{flake}#db-1><--target-host><root@10.0.0.12>",
        f"<switch><--flake><{flake}#app-1><--target-host><root@10.0.0.13>",
    ]


def test_deploy_chosen_hosts_and_action(deploy):
    run, calls, tree = deploy
    assert run("--action", "boot", "app-1", "db-1").returncode == 0
    flake = str(tree.resolve())
    # the fleet's order, not the command line's
    assert calls() == [
        f"<boot><--flake><{flake}#db-1><--target-host><root@10.0.0.12>",
        f"<boot><--flake><{flake}#app-1><--target-host><root@10.0.0.13>",
    ]


@pytest.mark.parametrize("args, message", [
    (["web-9"], "no host named 'web-9'"),
    (["--action", "reboot"], "unknown action 'reboot'"),
    (["--action"], "--action needs"),
    (["$(touch pwned)"], "no host named '$(touch pwned)'"),
    (["a]=x"], "no host named 'a]=x'"),
])
def test_deploy_refuses_bad_arguments(deploy, args, message, tmp_path):
    run, calls, _ = deploy
    proc = run(*args)
    assert proc.returncode == 2 and message in proc.stderr
    assert calls() == [] and not (tmp_path / "pwned").exists()


def test_deploy_in_a_path_with_spaces_and_quotes(tmp_path):
    """The tree's own path reaches nixos-rebuild as one word, whatever it holds."""
    tree = tmp_path / "it's a \"fleet\" $HOME"
    render_spec(FLEET, tree)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nixos-rebuild").write_text(f'#!/bin/sh\nprintf "%s\\n" "$3" >> {tmp_path / "log"}\n')
    (bin_dir / "nixos-rebuild").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = subprocess.run([require_tool("bash"), str(tree / "hosts/deploy.sh"), "db-1"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "log").read_text() == f"{tree.resolve()}#db-1\n"


def test_deploy_lists_the_secret_files_each_host_needs(tmp_path):
    render_spec(FLEET, tmp_path)
    text = (tmp_path / "hosts/deploy.sh").read_text()
    assert "#   gpu-1: none\n" in text
    assert "#     /run/secrets/redis-password  (services.redis.password_file, read by services.aidb)\n" in text


# --- hardware.nix: the user's file once it exists ----------------------------------------------


def render_cli(tree: Path, *args: str):
    return CliRunner().invoke(cli, ["render", str(tree / "stack.yaml"), "-o", str(tree), *args], catch_exceptions=False)


def test_hardware_nix_is_written_once_and_then_left_alone(tmp_path):
    (tmp_path / "stack.yaml").write_text(SPEC_3)
    assert render_cli(tmp_path).exit_code == 0
    hw = tmp_path / "hosts/db-1/hardware.nix"
    assert "THIS FILE IS YOURS" in hw.read_text()
    mine = '{ ... }: { fileSystems."/" = { device = "/dev/sda1"; fsType = "ext4"; }; system.stateVersion = "24.05"; }\n'
    hw.write_text(mine)
    # --check: up to date (the edit is not drift), and render writes nothing
    check = render_cli(tmp_path, "--check")
    assert check.exit_code == 0, check.output
    assert "up to date" in check.output
    again = render_cli(tmp_path)
    assert again.exit_code == 0 and " 0 written" in again.output
    assert hw.read_text() == mine
    # the spec changes: stackgen's files follow it, the user's file does not
    (tmp_path / "stack.yaml").write_text(SPEC_3.replace("maxmemory: 512mb", "maxmemory: 256mb"))
    changed = render_cli(tmp_path)
    assert changed.exit_code == 0 and "update   nix/fleet/db-1/services.nix" in changed.output
    assert hw.read_text() == mine
    assert "hosts/db-1/hardware.nix" not in (tmp_path / ".stackgen/state.json").read_text()
    # --force overwrites hand edits of stackgen's files, never the user's own
    assert render_cli(tmp_path, "--force").exit_code == 0 and hw.read_text() == mine


def test_a_missing_hardware_nix_is_written_again(tmp_path):
    (tmp_path / "stack.yaml").write_text(SPEC_3)
    render_cli(tmp_path)
    hw = tmp_path / "hosts/app-1/hardware.nix"
    placeholder = hw.read_text()
    hw.unlink()
    assert render_cli(tmp_path, "--check").exit_code == 1  # the flake imports it: missing is drift
    assert render_cli(tmp_path).exit_code == 0 and hw.read_text() == placeholder


def test_a_removed_host_keeps_an_edited_hardware_nix(tmp_path):
    """Hosts dropped from the spec: an untouched placeholder goes, a filled-in one stays."""
    (tmp_path / "stack.yaml").write_text(SPEC_3)
    render_cli(tmp_path)
    (tmp_path / "hosts/gpu-1/hardware.nix").write_text("{ ... }: { }\n")
    hosts_block = SPEC_3[SPEC_3.index("\nhosts:\n") + 1:SPEC_3.index("\ntargets:") + 1]
    one_host = "hosts:\n  db-1: {address: 10.0.0.12, services: [ollama, llama-cpp, coder, postgres, redis, qdrant, open-webui, aidb]}\n"
    (tmp_path / "stack.yaml").write_text(SPEC_3.replace(hosts_block, one_host))
    result = render_cli(tmp_path)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "hosts/app-1/hardware.nix").exists()  # the untouched placeholder
    assert (tmp_path / "hosts/gpu-1/hardware.nix").read_text() == "{ ... }: { }\n"  # the user's
    assert not (tmp_path / "nix/fleet/gpu-1/services.nix").exists()


# --- the spec -----------------------------------------------------------------------------------


def test_hosts_add_fleet_to_the_default_targets(tmp_path):
    from stackgen.spec import load_spec

    spec = tmp_path / "stack.yaml"
    spec.write_text("version: 1\nname: two\nsystems: [x86_64-linux]\nservices:\n  redis: {}\n  qdrant: {}\n"
                    "hosts:\n  a: {address: 10.1.0.1, services: [redis]}\n  b: {address: 10.1.0.2, services: [qdrant]}\n")
    loaded = load_spec(spec, spec.name)
    assert loaded.targets[-1] == "fleet" and "compose" in loaded.targets
    assert [h.system for h in loaded.hosts.values()] == ["x86_64-linux", "x86_64-linux"]
    assert not any(h.gpu for h in loaded.hosts.values())


def test_without_hosts_nothing_changes(tmp_path):
    from stackgen.spec import load_spec
    from stackgen.spec.model import DEFAULT_TARGETS

    spec = tmp_path / "stack.yaml"
    spec.write_text("version: 1\nname: one\nservices:\n  redis: {}\n")
    loaded = load_spec(spec, spec.name)
    assert loaded.targets == DEFAULT_TARGETS and loaded.hosts == {}
    files = render_text(spec.read_text(), tmp_path / "out")
    assert not any(p.startswith(("hosts/", "nix/fleet/")) for p in files) and "nixosConfigurations" not in files["flake.nix"]


def test_flake_has_a_configuration_and_a_check_per_host(tmp_path, nix):
    files = render_spec(FLEET, tmp_path)
    flake = files["flake.nix"]
    for host in ("gpu-1", "db-1", "app-1"):
        assert f"        {host} = lib.nixosSystem {{" in flake
        assert f"./hosts/{host}/hardware.nix" in flake and f"./nix/fleet/{host}\n" in flake
        assert f'fleet-{host} = evaluates "fleet-{host}"' in flake
    nix("--parse", str(tmp_path / "flake.nix"))
    for host in ("gpu-1", "db-1", "app-1"):
        nix("--parse", str(tmp_path / f"hosts/{host}/hardware.nix"))


def test_only_fleet_renders_the_fleet_and_the_flake(tmp_path):
    from stackgen.cli import TARGET_NAMES
    from stackgen.spec.model import ALL_TARGETS

    assert TARGET_NAMES == ALL_TARGETS  # the CLI's --only choices are the spec's targets
    (tmp_path / "stack.yaml").write_text(SPEC_3)
    result = render_cli(tmp_path, "--only", "fleet")
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file() and ".stackgen" not in p.parts)
    assert "nix/nixos.nix" not in written and "nix/devshell.nix" not in written
    assert {"flake.nix", "hosts/deploy.sh", "hosts/db-1/hardware.nix", "nix/fleet/db-1/default.nix"} <= set(written)
