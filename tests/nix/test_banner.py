"""The dev shell's banner names only commands that work from that shell for that spec (issue 13).

The shellHook is evaluated by real Nix (stub nixpkgs) and run by real bash with a PATH that
holds exactly the tools of each case (empty stand-in executables: the banner only asks
whether they exist).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path


from conftest import render_text

STUB_PKGS = (Path(__file__).parent / "stub-pkgs.nix").read_text()


def hook_for(tmp_path: Path, nix, targets: str) -> str:
    render_text(f"version: 1\nname: demo\nservices:\n  ollama: {{}}\n  redis: {{}}\ntargets: [{targets}]\n", tmp_path)
    stub = tmp_path / "stub-pkgs.nix"
    stub.write_text(STUB_PKGS)
    got = nix("--eval", "--strict", "--json", "-E", f"(import {tmp_path}/nix/devshell.nix {{ pkgs = import {stub}; }}).shellHook")
    return json.loads(got.stdout)


def banner(hook: str, tmp_path: Path, tools: tuple[str, ...]) -> list[str]:
    bindir = tmp_path / "bin"
    shutil.rmtree(bindir, ignore_errors=True)
    bindir.mkdir()
    for tool in tools:
        (bindir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bindir / tool).chmod(0o755)
    # the hook's own commands (unset, echo, [) are builtins; nothing else from the host PATH
    proc = subprocess.run([shutil.which("bash"), "--norc", "--noprofile", "-c", hook], capture_output=True, text=True,
                          env={"PATH": str(bindir), "HOME": str(tmp_path)}, check=True)
    return [ln for ln in proc.stdout.splitlines() if ln.startswith("  ") and "services:" not in ln and "GPU:" not in ln]


def test_compose_names_the_tool_that_is_there(tmp_path, nix):
    hook = hook_for(tmp_path, nix, "devshell, compose")
    assert banner(hook, tmp_path, ("podman-compose", "docker")) == ["  start: podman-compose up -d    (compose.yaml)"]
    assert banner(hook, tmp_path, ("docker",)) == ["  start: docker compose up -d    (compose.yaml)"]
    assert banner(hook, tmp_path, ()) == ["  compose.yaml: install podman-compose (or docker compose) to start the services"]


def test_a_stack_without_container_targets_is_not_told_about_them(tmp_path, nix):
    hook = hook_for(tmp_path, nix, "devshell")
    assert banner(hook, tmp_path, ("podman-compose", "podman", "systemctl", "docker")) == []
    assert "Quadlet" not in hook and "compose" not in hook


def test_quadlet_lists_the_stacks_units_when_podman_and_systemd_are_there(tmp_path, nix):
    hook = hook_for(tmp_path, nix, "devshell, quadlet")
    assert banner(hook, tmp_path, ("podman", "systemctl")) == [
        "  Quadlet: cp quadlet/* ~/.config/containers/systemd/ && systemctl --user daemon-reload"
        " && systemctl --user start demo-ollama demo-redis"
    ]
    assert banner(hook, tmp_path, ("systemctl",)) == ["  quadlet/: the units need podman (>= 4.4) and systemd"]


def test_processes_tells_how_to_start_them(tmp_path, nix):
    hook = hook_for(tmp_path, nix, "devshell, processes")
    assert banner(hook, tmp_path, ("nix",)) == ["  start: nix run .#services    (native processes under process-compose; -- down stops them)"]
    assert banner(hook, tmp_path, ()) == []
