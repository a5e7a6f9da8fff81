"""The extra llama.cpp units get exactly the serviceConfig nixpkgs' services.llama-cpp gives
its one server (nixos/modules/services/misc/llama-cpp.nix, read at NixOS/nixpkgs
0d1c6dbeeef1757e7c9e5b8445b247c065ff65e7; mirrored here, ExecStart aside, which differs by
design: the extra unit names its own host, port and model)."""

from __future__ import annotations

from conftest import render_text

NIXPKGS_LLAMA_CPP = {
    "Type": "idle",
    "KillSignal": "SIGINT",
    "Restart": "on-failure",
    "RestartSec": 300,
    "PrivateDevices": False,
    "DynamicUser": True,
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": ["AF_INET", "AF_INET6", "AF_UNIX"],
    "NoNewPrivileges": True,
    "PrivateMounts": True,
    "PrivateTmp": True,
    "PrivateUsers": True,
    "ProtectClock": True,
    "ProtectControlGroups": True,
    "ProtectHome": True,
    "ProtectKernelLogs": True,
    "ProtectKernelModules": True,
    "ProtectKernelTunables": True,
    "ProtectSystem": "strict",
    "MemoryDenyWriteExecute": True,
    "LockPersonality": True,
    "RemoveIPC": True,
    "RestrictNamespaces": True,
    "RestrictRealtime": True,
    "RestrictSUIDSGID": True,
    "SystemCallArchitectures": "native",
    "SystemCallFilter": ["@system-service", "~@privileged"],
    "SystemCallErrorNumber": "EPERM",
    "ProtectProc": "invisible",
    "ProtectHostname": True,
    "ProcSubset": "pid",
}


def test_extra_llama_unit_has_nixpkgs_hardening(tmp_path):
    from stackgen.spec import load_spec
    from stackgen.nixosmodule import llama_units

    render_text(
        "version: 1\nname: two\ntargets: [nixos]\nservices:\n  llama-cpp: {model: /m/a.gguf}\n"
        "  small: {kind: llama-cpp, model: /m/b.gguf, port: 8081}\n",
        tmp_path,
    )
    (unit,) = llama_units(load_spec(tmp_path / "stack.yaml", "stack.yaml"))
    assert unit["service"]["serviceConfig"] == NIXPKGS_LLAMA_CPP
    assert unit["service"]["after"] == ["network.target"] and unit["service"]["wantedBy"] == ["multi-user.target"]
