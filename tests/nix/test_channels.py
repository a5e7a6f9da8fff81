"""Issue 12: branches, China flake inputs, cache keys, user overrides and unfree extensions,
each checked by evaluating the rendered Nix with real Nix (and nixpkgs' lib where it matters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import render_text
from test_modules import BRANCH, HERE, render_on, stub_eval

OPTIONS = HERE / "options"
TUNA = "https://mirrors.tuna.tsinghua.edu.cn"


def flake_attr(nix, tree: Path, attr: str) -> dict:
    return json.loads(nix("--eval", "--strict", "--json", "-E", f"(import {tree}/flake.nix).{attr}").stdout)


@pytest.mark.parametrize("branch", sorted(BRANCH))
@pytest.mark.parametrize("region,choice,mirrored", [
    ("global", None, False),
    ("china", None, True),  # the default for china
    ("china", "github", False),
    ("global", "mirror", True),
])
def test_flake_inputs_by_region(region, choice, mirrored, branch, tmp_path, nix):
    mirrors = f"region: {region}" + (f", flake_inputs: {choice}" if choice else "")
    render_text(f"version: 1\nname: inputs\nnixpkgs: {branch}\nmirrors: {{{mirrors}}}\ntargets: [devshell, home-manager]\n", tmp_path)
    inputs = flake_attr(nix, tmp_path, "inputs")
    hm = {"nixos-26.05": "release-26.05", "nixos-26.11": "release-26.11", "nixos-unstable": "master"}[branch]
    if mirrored:
        assert inputs["nixpkgs"] == {"url": f"{TUNA}/nix-channels/{branch}/nixexprs.tar.xz"}
        assert inputs["home-manager"]["url"] == f"git+{TUNA}/git/home-manager.git?ref={hm}"
    else:
        assert inputs["nixpkgs"] == {"url": f"github:NixOS/nixpkgs/{branch}"}
        assert inputs["home-manager"]["url"] == f"github:nix-community/home-manager/{hm}"
    assert inputs["home-manager"]["inputs"] == {"nixpkgs": {"follows": "nixpkgs"}}


def test_home_module_is_exported_under_both_names(tmp_path, nix):
    render_text("version: 1\nname: hm\ntargets: [home-manager]\n", tmp_path)
    expr = (
        f"let flake = import {tmp_path}/flake.nix; out = flake.outputs {{ self = out; nixpkgs.lib = {{ genAttrs = n: f: {{ }}; }}; }};"
        " in [ (toString out.homeModules.default) (toString out.homeManagerModules.default) ]"
    )
    got = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    assert got == [f"{tmp_path}/nix/home.nix"] * 2


KEY = "tuna.example:" + "A" * 43 + "="


def test_a_key_given_for_a_builtin_mirror_is_kept(tmp_path, nix):
    """mirrors.nix repeats a built-in China mirror with a key: the key reaches flake.nix's
    nixConfig and the NixOS module, and the URL is listed once, in its built-in place."""
    url = f"{TUNA}/nix-channels/store"
    render_text(
        f"version: 1\nname: keyed\nmirrors:\n  region: china\n  nix:\n    - {{url: '{url}', key: '{KEY}'}}\n"
        "targets: [devshell, nixos]\n",
        tmp_path,
    )
    config = flake_attr(nix, tmp_path, "nixConfig")
    assert config["extra-trusted-public-keys"] == [KEY]
    assert config["extra-substituters"].count(url) == 1 and config["extra-substituters"][0] == url
    assert "https://mirrors.bfsu.edu.cn/nix-channels/store" in config["extra-substituters"]
    settings = stub_eval(nix, tmp_path / "nix/nixos.nix")["nix"]["settings"]
    assert settings["trusted-public-keys"] == [KEY]
    assert settings["substituters"] == config["extra-substituters"]


# A user's own settings, at normal priority, over the rendered module's.
USER = """{ lib, ... }: {
  services.ollama.port = 12345;
  services.ollama.host = "0.0.0.0";
  services.ollama.loadModels = [ "mine" ];
  services.postgresql.settings.port = 5433;
  services.redis.servers.ai-stack.port = 6390;
  services.qdrant.settings.service.http_port = 7333;
  services.open-webui.port = 3300;
  services.open-webui.environment.DO_NOT_TRACK = "1";
  %s
}
"""
LLAMA = {True: "services.llama-cpp.settings.port = 9090;", False: "services.llama-cpp.port = 9090;"}


@pytest.mark.parametrize("branch", sorted(BRANCH))
def test_users_own_values_win_without_mkforce(branch, tmp_path, nix, nixpkgs_lib):
    from stackgen.spec.model import BRANCH_TABLE

    render_on("ai-stack", branch, tmp_path)
    settings = BRANCH_TABLE[branch].llama_settings
    (tmp_path / "user.nix").write_text(USER % LLAMA[settings])
    llama = "config.services.llama-cpp" + (".settings" if settings else "")
    expr = f"""
      let
        lib = import {nixpkgs_lib};
        config = (lib.evalModules {{
          modules = [ {OPTIONS}/nixos-{BRANCH[branch]}.nix {tmp_path}/nix/nixos.nix {tmp_path}/user.nix
            {{ _module.args.pkgs = import {OPTIONS}/stub-pkgs.nix {{ inherit lib; }}; }} ];
        }}).config;
      in {{
        ollama = {{ inherit (config.services.ollama) port host loadModels; }};
        llama = {llama}.port;
        postgres = config.services.postgresql.settings.port;
        redis = config.services.redis.servers.ai-stack.port;
        qdrant = config.services.qdrant.settings.service;
        webui = {{ inherit (config.services.open-webui) port environment; }};
      }}
    """
    got = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    assert got["ollama"] == {"port": 12345, "host": "0.0.0.0", "loadModels": ["mine"]}
    assert (got["llama"], got["postgres"], got["redis"]) == (9090, 5433, 6390)
    assert got["qdrant"]["http_port"] == 7333 and got["qdrant"]["grpc_port"] == 6334  # the rest stays
    assert got["webui"]["port"] == 3300
    assert got["webui"]["environment"]["DO_NOT_TRACK"] == "1" and got["webui"]["environment"]["SCARF_NO_ANALYTICS"] == "True"


TIMESCALE = """version: 1
name: tsdb
gpu: {vendor: nvidia}
services:
  postgres:
    databases: [metrics]
    extensions: [pgvector, timescaledb]
targets: [nixos]
"""


def timescale_eval(nix, lib: Path, module: Path) -> dict:
    expr = f"import {OPTIONS}/eval.nix {{ lib = import {lib}; mirror = {OPTIONS}/nixos-26.11.nix; module = {module}; }}"
    return json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)


def test_timescaledb_is_the_apache_build(tmp_path, nix, nixpkgs_lib):
    """nixpkgs' `timescaledb` is TSL-licensed (unfree): NixOS gets `timescaledb-apache`, which
    nixpkgs builds without any unfree permission; the library and CREATE EXTENSION keep the name."""
    render_text(TIMESCALE, tmp_path)
    module = tmp_path / "nix/nixos.nix"
    got = timescale_eval(nix, nixpkgs_lib, module)
    assert got["extensions"] == ["pgvector", "timescaledb-apache"] and got["unfreeExtensions"] == []
    text = module.read_text()
    assert 'shared_preload_libraries = mkDefault "timescaledb"' in text
    assert "CREATE EXTENSION IF NOT EXISTS timescaledb'" in text
    # The check can fail: the TSL build is unfree, and the NVIDIA-only predicate refuses it.
    module.write_text(text.replace("ps.timescaledb-apache", "ps.timescaledb"))
    assert timescale_eval(nix, nixpkgs_lib, module)["unfreeExtensions"] == ["timescaledb"]
    expr = f"""
      let lib = import {nixpkgs_lib}; config = import {tmp_path}/nix/nixpkgs-config.nix {{ inherit lib; }};
      in map (license: config.allowUnfreePredicate {{ pname = "timescaledb"; name = "timescaledb-2"; meta.license = license; }})
        [ lib.licenses.tsl lib.licenses.asl20 ]
    """
    assert json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout) == [False, True]
