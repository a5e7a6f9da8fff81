"""The fleet target's hosts, evaluated: each host's module (nix/fleet/<host>/default.nix and the
services.nix it imports) with the stub module system in CI, and with nixpkgs' real
lib.evalModules against the option mirrors when STACKGEN_NIXPKGS_LIB is set. The properties
that make a fleet safe are read from the evaluated configuration: every service bound to its
host's address, clients pointing across hosts, the services' ports open to the other hosts
only (nftables source-address rules, never allowedTCPPorts or openFirewall)."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import golden_cases, render_spec, render_text, require_tool
from test_modules import BRANCH, real_eval, stub_eval

FLEET = golden_cases()["fleet-3"]
ADDRESS = {"gpu-1": "10.0.0.11", "db-1": "10.0.0.12", "app-1": "10.0.0.13"}
# Every port each host serves (the spec's services there).
PORTS = {"gpu-1": {8080, 8081, 11434}, "db-1": {5432, 6333, 6334, 6379}, "app-1": {3000, 8091}}
RULE = re.compile(r"(ip6?) saddr \{ ([^}]*) \} tcp dport \{ ([^}]*) \} accept comment \"[^\"]*\"")


def host_module(tree: Path, host: str) -> Path:
    """The host's module with what the stub cannot know: nixpkgs' default of firewall.enable."""
    wrapper = tree / f"stub-{host}.nix"
    wrapper.write_text(f"{{ lib, ... }}: {{ imports = [ ./nix/fleet/{host} ]; options.networking.firewall.enable = lib.mkOption {{ default = true; }}; }}\n")
    return wrapper


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, nix):
    """host -> its evaluated configuration (stub), for the three-host reference fleet."""
    tree = tmp_path_factory.mktemp("fleet")
    render_spec(FLEET, tree)
    return {host: stub_eval(nix, host_module(tree, host)) for host in ADDRESS}


def rules_of(cfg: dict) -> list[tuple[str, set[str], set[int]]]:
    """(family, source addresses, ports) of every rule in networking.firewall.extraInputRules;
    a line that is not such a rule fails the test."""
    out = []
    for line in cfg["networking"]["firewall"]["extraInputRules"].splitlines():
        m = RULE.fullmatch(line)
        assert m, f"not a fleet rule: {line!r}"
        out.append((m[1], {a.strip() for a in m[2].split(",")}, {int(p) for p in m[3].split(",")}))
    return out


@pytest.mark.parametrize("host", sorted(ADDRESS))
def test_firewall_admits_the_other_hosts_only(fleet, host):
    cfg = fleet[host]
    others = {a for h, a in ADDRESS.items() if h != host}
    assert rules_of(cfg) == [("ip", others, PORTS[host])]
    assert cfg["networking"]["nftables"]["enable"] is True
    assert cfg["networking"]["hostName"] == host
    # Nothing opened to anyone: no allowedTCPPorts, no module's openFirewall.
    assert "allowedTCPPorts" not in cfg["networking"]["firewall"]
    assert "openFirewall" not in json.dumps(cfg)
    assert cfg["assertions"][0]["assertion"] is True


def nft_check(rules: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`nft -c` (parse and check, change nothing) of the rules where nixpkgs' nftables
    firewall puts extraInputRules: the input-allow chain of the inet nixos-fw table
    (nixos/modules/services/networking/firewall-nftables.nix)."""
    nft = require_tool("nft", "the fleet's firewall rules are checked by nftables itself")
    ruleset = tmp_path / "fw.nft"
    ruleset.write_text(f"table inet nixos-fw {{\n  chain input-allow {{\n{rules}\n  }}\n}}\n")
    return subprocess.run([nft, "-c", "-f", str(ruleset)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("host", sorted(ADDRESS))
def test_nftables_accepts_the_rules(fleet, host, tmp_path):
    proc = nft_check(fleet[host]["networking"]["firewall"]["extraInputRules"], tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_nftables_rejects_a_broken_rule(fleet, tmp_path):
    """Negative control: an IPv6 source in an `ip` (IPv4) match is refused by nft -c."""
    rules = fleet["db-1"]["networking"]["firewall"]["extraInputRules"].replace("10.0.0.11", "fd00::11")
    assert nft_check(rules, tmp_path).returncode != 0


def test_services_bind_their_hosts_address(fleet):
    gpu, db, app = fleet["gpu-1"]["services"], fleet["db-1"]["services"], fleet["app-1"]["services"]
    assert gpu["ollama"]["host"] == gpu["llama-cpp"]["settings"]["host"] == "10.0.0.11"  # 26.11: settings
    assert "--host 10.0.0.11 --port 8081" in fleet["gpu-1"]["systemd"]["services"]["llama-cpp-coder"]["serviceConfig"]["ExecStart"]
    assert db["postgresql"]["settings"]["listen_addresses"] == "10.0.0.12"
    assert db["redis"]["servers"]["ai-fleet"]["bind"] == "10.0.0.12"
    assert db["qdrant"]["settings"]["service"]["host"] == "10.0.0.12"
    assert app["open-webui"]["host"] == "10.0.0.13"
    # each host runs its own services only
    assert set(gpu) - {"xserver"} == {"ollama", "llama-cpp"}
    assert set(db) == {"postgresql", "redis", "qdrant"}
    assert set(app) == {"open-webui"}
    # PostgreSQL's password logins: from the other hosts' addresses, not 0.0.0.0/0
    assert db["postgresql"]["authentication"].splitlines() == ["host all all 10.0.0.11/32 scram-sha-256", "host all all 10.0.0.13/32 scram-sha-256"]


def test_clients_point_across_hosts(fleet):
    app = fleet["app-1"]
    env = app["systemd"]["services"]["ai-fleet-aidb"]["environment"]
    assert env["DATABASE_URL"] == "postgresql://aidb@10.0.0.12:5432/aidb"
    assert env["REDIS_URL"] == "redis://10.0.0.12:6379" and env["QDRANT_URL"] == "http://10.0.0.12:6333"
    assert env["OLLAMA_BASE_URL"] == "http://10.0.0.11:11434" and env["OLLAMA_HOST"] == "10.0.0.11:11434"
    assert env["OPENAI_BASE_URL"] == "http://10.0.0.11:8081/v1"
    assert env["POSTGRES_PASSWORD_FILE"] == "%d/postgres-password"  # a file on this host, never a value
    unit = app["systemd"]["services"]["ai-fleet-aidb"]
    assert unit["requires"] == []  # units on other machines cannot be required
    assert unit["serviceConfig"]["LoadCredential"] == [
        "postgres-password:/run/secrets/postgres-password",
        "redis-password:/run/secrets/redis-password",
        "qdrant-api-key:/run/secrets/qdrant.env",
    ]
    assert app["services"]["open-webui"]["environment"]["OLLAMA_BASE_URL"] == "http://10.0.0.11:11434"


def test_gpu_settings_per_host(fleet):
    gpu = fleet["gpu-1"]
    assert gpu["services"]["ollama"]["package"] == "<package ollama-cuda>"
    assert gpu["services"]["xserver"]["videoDrivers"] == ["nvidia"]
    assert gpu["nixpkgs"]["config"]["cudaSupport"] is True
    for host in ("db-1", "app-1"):  # gpu: false: no driver, no CUDA nixpkgs
        assert "hardware" not in fleet[host] and "nixpkgs" not in fleet[host]
        assert "xserver" not in fleet[host]["services"]


def test_ipv6_fleet_uses_ip6_rules(tmp_path, nix):
    """Addresses of both families: one rule per family, pg_hba networks as /128 and /32."""
    render_text(
        "version: 1\nname: v6\nsystems: [x86_64-linux]\ntargets: [fleet]\n"
        "services:\n  postgres: {databases: [app]}\n  redis: {}\n  qdrant: {}\n"
        "hosts:\n  db: {address: 'fd00::0012', services: [postgres]}\n"
        "  cache: {address: 'fd00::13', services: [redis]}\n  vec: {address: 192.0.2.7, services: [qdrant]}\n",
        tmp_path,
    )
    cfg = stub_eval(nix, host_module(tmp_path, "db"))
    check = nft_check(cfg["networking"]["firewall"]["extraInputRules"], tmp_path)
    assert check.returncode == 0, check.stderr
    assert rules_of(cfg) == [("ip", {"192.0.2.7"}, {5432}), ("ip6", {"fd00::13"}, {5432})]
    assert cfg["services"]["postgresql"]["settings"]["listen_addresses"] == "fd00::12"  # canonical form
    assert cfg["services"]["postgresql"]["authentication"].splitlines() == ["host all all fd00::13/128 scram-sha-256", "host all all 192.0.2.7/32 scram-sha-256"]
    for net in ("fd00::13/128", "192.0.2.7/32"):
        ipaddress.ip_network(net)  # what pg_hba.conf takes: a valid network


# --- the real module system ---------------------------------------------------------------


@pytest.mark.parametrize("branch", sorted(BRANCH))
@pytest.mark.parametrize("host", sorted(ADDRESS))
def test_host_typechecks_against_nixpkgs_options(host, branch, tmp_path, nix, nixpkgs_lib):
    from stackgen.records import replace

    from stackgen import write
    from stackgen.render import render_tree
    from stackgen.spec import load_spec

    spec = replace(load_spec(FLEET, FLEET.name), nixpkgs=branch)
    write.apply(write.plan(tmp_path, render_tree(spec), spec.source_sha256))
    got = json.loads(real_eval(nix, nixpkgs_lib, f"nixos-{BRANCH[branch]}.nix", tmp_path / "nix/fleet" / host).stdout)
    assert got["failedAssertions"] == [] and got["warnings"] == [] and got["unfreeExtensions"] == []


def test_real_evaluation_fails_the_fleet_assertion_without_nftables(tmp_path, nix, nixpkgs_lib):
    """The assertion is real: a configuration that turns nftables off (the rules would be
    silently dropped by the iptables firewall) does not evaluate cleanly."""
    render_spec(FLEET, tmp_path)
    wrapper = tmp_path / "iptables.nix"
    wrapper.write_text(f"{{ lib, ... }}: {{ imports = [ {tmp_path / 'nix/fleet/db-1'} ]; networking.nftables.enable = lib.mkForce false; }}\n")
    got = json.loads(real_eval(nix, nixpkgs_lib, "nixos-26.11.nix", wrapper).stdout)
    assert got["failedAssertions"] == ["stackgen: the fleet's firewall rules for db-1 need networking.firewall.enable and networking.nftables.enable"]


def test_real_evaluation_rejects_a_bad_host_name(tmp_path, nix, nixpkgs_lib):
    """The mirrored hostName type is nixpkgs' own: a name with a dot is refused (negative control)."""
    render_spec(FLEET, tmp_path)
    module = tmp_path / "nix/fleet/db-1/default.nix"
    module.write_text(module.read_text().replace('lib.mkDefault "db-1"', 'lib.mkDefault "db.1"'))
    proc = real_eval(nix, nixpkgs_lib, "nixos-26.11.nix", tmp_path / "nix/fleet/db-1", check=False)
    assert proc.returncode != 0 and "networking.hostName" in proc.stderr


def test_instances_of_one_kind_on_different_hosts(tmp_path, nix):
    """nixpkgs runs one Ollama per machine: a second one goes on another host, and Open WebUI
    talks to the Ollama on its own host rather than the stack's first one."""
    render_text(
        "version: 1\nname: two\nsystems: [x86_64-linux]\ntargets: [fleet]\n"
        "services:\n  ollama: {}\n  ollama-b: {kind: ollama, port: 11436}\n  web: {kind: open-webui}\n"
        "hosts:\n  a: {address: 10.0.0.1, services: [ollama]}\n  b: {address: 10.0.0.2, services: [ollama-b, web]}\n",
        tmp_path,
    )
    a = stub_eval(nix, host_module(tmp_path, "a"))["services"]
    b = stub_eval(nix, host_module(tmp_path, "b"))["services"]
    assert (a["ollama"]["host"], a["ollama"]["port"]) == ("10.0.0.1", 11434)
    assert (b["ollama"]["host"], b["ollama"]["port"]) == ("10.0.0.2", 11436)
    assert b["open-webui"]["environment"]["OLLAMA_BASE_URL"] == "http://10.0.0.2:11436"


def placeholder_message(host: str) -> str:
    return (
        f"hosts/{host}/hardware.nix is still stackgen's placeholder: put the machine's `nixos-generate-config "
        f"--show-hardware-config` (ssh root@{ADDRESS[host]}) in hosts/{host}/hardware-configuration.nix, import it "
        "there and delete this assertion (see the file's top)"
    )


def test_host_with_its_hardware_placeholder_stops_at_the_placeholder(tmp_path, nix, nixpkgs_lib):
    """What nixosConfigurations.<host> is made of (the placeholder hardware.nix and the host's
    module) type-checks together against the real lib and the option mirrors, and the only
    failed assertion is the placeholder's own, which says what to do (not NixOS's missing root
    file system, which is what `nix flake check` would otherwise report)."""
    render_spec(FLEET, tmp_path)
    for host in ADDRESS:
        both = tmp_path / f"both-{host}.nix"
        both.write_text(f"{{ imports = [ ./hosts/{host}/hardware.nix ./nix/fleet/{host} ]; }}\n")
        got = json.loads(real_eval(nix, nixpkgs_lib, "nixos-26.11.nix", both).stdout)
        assert got["failedAssertions"] == [placeholder_message(host)] and got["warnings"] == []


# What `nixos-generate-config --show-hardware-config` writes for a simple machine (trimmed to the
# options it sets). Their types are not mirrored (the mirrors hold the options stackgen sets), so
# the test declares them loosely: it proves the steps in the placeholder's comment, not NixOS's
# file-system types.
GENERATED = """{ lib, ... }:
{
  boot.initrd.availableKernelModules = [ "ahci" "nvme" "xhci_pci" ];
  fileSystems."/" = { device = "/dev/disk/by-uuid/0f1e2d3c"; fsType = "ext4"; };
  swapDevices = [ ];
}
"""
HARDWARE_OPTIONS = """{ lib, ... }:
{
  options.boot.initrd.availableKernelModules = lib.mkOption { type = lib.types.listOf lib.types.str; };
  options.boot.loader = lib.mkOption { type = lib.types.attrsOf lib.types.anything; default = { }; };
  options.fileSystems = lib.mkOption { type = lib.types.attrsOf lib.types.anything; };
  options.swapDevices = lib.mkOption { type = lib.types.listOf lib.types.anything; };
}
"""


def test_the_placeholders_steps_make_the_host_evaluate(tmp_path, nix, nixpkgs_lib):
    """Following the placeholder's comment (the generated file beside it, imported, the boot
    loader chosen, the assertion deleted) leaves no failed assertion; the generated file's
    file systems reach the configuration."""
    from test_modules import HERE

    render_spec(FLEET, tmp_path)
    hardware = tmp_path / "hosts/db-1/hardware.nix"
    (hardware.parent / "hardware-configuration.nix").write_text(GENERATED)
    text = hardware.read_text()
    start, end = text.index("  assertions = ["), text.index("  ];\n", text.index("  assertions = [")) + len("  ];\n")
    filled = text[:start] + text[end:]
    filled = filled.replace("# imports = [ ./hardware-configuration.nix ];", "imports = [ ./hardware-configuration.nix ];")
    filled = filled.replace("# boot.loader.systemd-boot.enable = true;", "boot.loader.systemd-boot.enable = true;")
    assert filled.count("imports = [ ./hardware-configuration.nix ];") == 1 and "assertion = false" not in filled
    hardware.write_text(filled)
    (tmp_path / "hardware-options.nix").write_text(HARDWARE_OPTIONS)
    (tmp_path / "both.nix").write_text("{ imports = [ ./hosts/db-1/hardware.nix ./nix/fleet/db-1 ]; }\n")
    expr = (
        f"let e = import {HERE}/options/eval.nix {{ lib = import {nixpkgs_lib}; mirror = {HERE}/options/nixos-26.11.nix; "
        f"module = {tmp_path}/both.nix; extra = [ {tmp_path}/hardware-options.nix ]; }}; in e"
    )
    got = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    assert got["failedAssertions"] == [] and got["warnings"] == []
    fs = nix("--eval", "--strict", "--json", "-E", f"((import {nixpkgs_lib}).evalModules {{ modules = [ {HERE}/options/nixos-26.11.nix {tmp_path}/both.nix {tmp_path}/hardware-options.nix {{ _module.args.pkgs = import {HERE}/options/stub-pkgs.nix {{ lib = import {nixpkgs_lib}; }}; }} ]; }}).config.fileSystems")
    assert json.loads(fs.stdout) == {"/": {"device": "/dev/disk/by-uuid/0f1e2d3c", "fsType": "ext4"}}


def test_the_placeholder_carries_a_failing_assertion(tmp_path, nix):
    """In CI (no nixpkgs lib): the placeholder module, applied by Nix, defines one assertion,
    false, with the message that says what to do."""
    from test_modules import HERE

    render_spec(FLEET, tmp_path)
    got = json.loads(nix("--eval", "--strict", "--json", "-E", f"(import {tmp_path}/hosts/gpu-1/hardware.nix {{ lib = import {HERE}/stub/lib.nix; }}).assertions").stdout)
    assert got == [{"assertion": False, "message": placeholder_message("gpu-1")}]


def test_flake_lists_a_configuration_per_host(tmp_path, nixpkgs_lib):
    """`nix eval` of the rendered flake (nixpkgs replaced by the lib checkout, all that is
    offline): nixosConfigurations names every host."""
    import os

    from conftest import NIX_CONFIG

    render_spec(FLEET, tmp_path)
    git = require_tool("git")
    subprocess.run([git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([git, "add", "-A"], cwd=tmp_path, check=True)
    proc = subprocess.run(
        ["nix", "eval", "--json", "--no-write-lock-file", "--override-input", "nixpkgs", f"path:{nixpkgs_lib.parent if nixpkgs_lib.name == 'lib' else nixpkgs_lib}",
         f"{tmp_path}#nixosConfigurations", "--apply", "builtins.attrNames"],
        capture_output=True, text=True, env=dict(os.environ, NIX_CONFIG=NIX_CONFIG), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == sorted(ADDRESS)
