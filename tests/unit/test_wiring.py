"""`uses:` wiring, loaded back from each target as its consumer reads it: compose.yaml through
docker-compose, Quadlet units through podman's quadlet generator, the dev shell's variables
through Nix and bash. Cases: the seed systems (tests/specs/valid/mcp-gateway, tutor, cortex)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import NIX_CONFIG, ROOT, SPECS, render_spec, require_tool


GATEWAY = {  # what the gateway app receives inside the compose network
    "POSTGRES_URL": "postgresql://gateway@postgres:5432/gateway",
    "DATABASE_URL": "postgresql://gateway@postgres:5432/gateway",
    "REDIS_URL": "redis://redis:6379",
    "QDRANT_URL": "http://qdrant:6333",
    "CHAT_URL": "http://chat:8080",
    "CODER_URL": "http://coder:8080",
}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for case in ("mcp-gateway", "tutor", "cortex"):
        out[case] = tmp_path_factory.mktemp(case)
        render_spec(SPECS / "valid" / f"{case}.yaml", out[case])
    return out


def compose_config(tree: Path, *args: str) -> dict:
    tool = require_tool("docker-compose", "docker-compose 2.x reads compose files as compose does")
    proc = subprocess.run([tool, "-f", "compose.yaml", *args, "config", "--format", "json"], cwd=tree, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_compose_passes_connection_variables_and_waits_for_health(seeds):
    services = compose_config(seeds["mcp-gateway"])["services"]
    gateway = services["gateway"]
    assert {k: gateway["environment"][k] for k in GATEWAY} == GATEWAY
    assert gateway["environment"]["LOG_LEVEL"] == "info"
    # two llama.cpp servers: no OPENAI_BASE_URL (which one?), each by its name
    assert "OPENAI_BASE_URL" not in gateway["environment"]
    assert {name: dep["condition"] for name, dep in gateway["depends_on"].items()} == dict.fromkeys(
        ["postgres", "redis", "qdrant", "chat", "coder"], "service_healthy"
    )
    assert services["redis-insight"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["redis-insight"]["environment"] == {"REDIS_URL": "redis://redis:6379"}
    assert gateway["build"]["dockerfile"] == "Containerfile" and gateway["image"] == "localhost/mcp-gateway:dev"
    # a second llama.cpp is its own service, on its own port
    assert [p["published"] for p in services["coder"]["ports"]] == ["8081"]


def test_a_used_service_behind_a_profile_is_optional(seeds):
    plain = compose_config(seeds["tutor"])["services"]
    assert "ollama" not in plain and "ollama-models" not in plain
    assert plain["tutor-api"]["environment"]["OLLAMA_BASE_URL"] == "http://ollama:11434"
    assert plain["tutor-api"]["depends_on"]["ollama"]["required"] is False
    with_llm = compose_config(seeds["tutor"], "--profile", "llm")["services"]
    assert {"ollama", "ollama-models"} <= set(with_llm)
    assert with_llm["ollama-models"]["depends_on"]["ollama"]["condition"] == "service_healthy"
    assert with_llm["ollama-models"]["command"] == ["qwen2.5:7b"]


def quadlet_services(tree: Path) -> dict[str, str]:
    tool = require_tool("quadlet", "podman 5's Quadlet generator reads the units (tests/install-deps.sh)")
    proc = subprocess.run([tool, "-dryrun", "-user"], capture_output=True, text=True, env={**os.environ, "QUADLET_UNIT_DIRS": str(tree / "quadlet")})
    assert proc.returncode == 0 and "Error" not in proc.stderr, proc.stderr
    out = {}
    for part in proc.stdout.split("\n---")[0:]:
        head, _, body = part.lstrip("-").partition("---\n")
        out[head.strip()] = body
    return out


def test_quadlet_units_pass_connection_variables_and_order_start_up(seeds):
    units = quadlet_services(seeds["mcp-gateway"])
    gateway = units["mcp-gateway-gateway.service"]
    [start] = [ln for ln in gateway.splitlines() if ln.startswith("ExecStart=")]
    argv = shlex.split(start.removeprefix("ExecStart="))  # systemd's quoting, for these plain words
    env = dict(argv[i + 1].split("=", 1) for i, w in enumerate(argv) if w == "--env")
    want = {  # peers by their container names on the stack's network
        "POSTGRES_URL": "postgresql://gateway@mcp-gateway-postgres:5432/gateway",
        "DATABASE_URL": "postgresql://gateway@mcp-gateway-postgres:5432/gateway",
        "REDIS_URL": "redis://mcp-gateway-redis:6379",
        "QDRANT_URL": "http://mcp-gateway-qdrant:6333",
        "CHAT_URL": "http://mcp-gateway-chat:8080",
        "CODER_URL": "http://mcp-gateway-coder:8080",
    }
    assert {k: env.get(k) for k in want} == want, argv
    for used in ("postgres", "redis", "qdrant", "chat", "coder"):
        assert f"Requires=mcp-gateway-{used}.service" in gateway and f"After=mcp-gateway-{used}.service" in gateway
        # the used unit is started only once its healthcheck passes
        assert "--sdnotify=healthy" in units[f"mcp-gateway-{used}.service"]
    pull = units["tutor-ollama-models.service"] if "tutor-ollama-models.service" in units else quadlet_services(seeds["tutor"])["tutor-ollama-models.service"]
    assert "Type=oneshot" in pull and "After=tutor-ollama.service" in pull and "ollama pull" in pull


def test_dev_shell_exports_every_declared_services_variables(seeds, tmp_path):
    """nix evaluates the dev shell's env (stub packages); bash then holds what mkShell exports."""
    require_tool("nix-instantiate", "the dev shell is evaluated by real Nix")
    bash = require_tool("bash")
    stub = ROOT / "tests" / "nix" / "stub-pkgs.nix"
    want = {
        "cortex": {"OLLAMA_BASE_URL": "http://127.0.0.1:11434", "OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_URL": "http://127.0.0.1:11434"},
        "mcp-gateway": {
            "DATABASE_URL": "postgresql://gateway@127.0.0.1:5432/gateway",
            "REDIS_URL": "redis://127.0.0.1:6379",
            "QDRANT_URL": "http://127.0.0.1:6333",
            "CHAT_URL": "http://127.0.0.1:8080",
            "CODER_URL": "http://127.0.0.1:8081",
            "REDIS_INSIGHT_URL": "http://127.0.0.1:5540",
            "GATEWAY_URL": "http://127.0.0.1:8091",
        },
    }
    for case, expected in want.items():
        expr = f"(import {seeds[case]}/nix/devshell.nix {{ pkgs = import {stub}; }}).env"
        proc = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", expr], capture_output=True, text=True, env={**os.environ, "NIX_CONFIG": NIX_CONFIG})
        assert proc.returncode == 0, proc.stderr
        env = {k: v for k, v in json.loads(proc.stdout).items() if isinstance(v, str)}
        names = sorted(expected)
        script = 'printf "%s\\0" ' + " ".join(f'"${n}"' for n in names)
        out = subprocess.run([bash, "--norc", "--noprofile", "-c", script], capture_output=True, env={"PATH": "/usr/bin:/bin", **env}, check=True).stdout
        assert dict(zip(names, out.decode().split("\0"))) == expected, case
    # two llama.cpp servers declared: no single OPENAI_BASE_URL in the shell either
    assert "OPENAI_BASE_URL" not in (seeds["mcp-gateway"] / "nix" / "devshell.nix").read_text()
