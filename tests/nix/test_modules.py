"""The rendered NixOS and home-manager modules, evaluated.

Without nixpkgs: a stub `lib` (tests/nix/stub/) evaluates each module to its attribute tree,
compared with tests/nix/expected/<case>.<module>.json (rewritten by --update-golden) and
checked for the properties that matter (loopback binds, no firewall holes, telemetry off).
With STACKGEN_NIXPKGS_LIB: nixpkgs' real lib.evalModules type-checks every emitted option
against declarations that mirror nixpkgs' and home-manager's (tests/nix/options/).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import golden_cases, render_spec

HERE = Path(__file__).parent
EXPECTED = HERE / "expected"
CASES = golden_cases()
MODULES = {"nixos": "nix/nixos.nix", "home": "nix/home.nix"}
# nixpkgs branch -> the suffix of its option mirrors in tests/nix/options/
BRANCH = {"nixos-26.05": "26.05", "nixos-26.11": "26.11", "nixos-unstable": "unstable"}


def mirror_of(case: str, kind: str = "nixos") -> str:
    """The option mirror for the branch a golden case's spec names."""
    from stackgen.spec import load_spec

    return f"{kind}-{BRANCH[load_spec(CASES[case], CASES[case].name).nixpkgs]}.nix"


def render_on(case: str, branch: str, out: Path) -> None:
    """Render a golden case as if its spec said `nixpkgs: <branch>`, so that every case is
    checked against the option shapes of every branch."""
    from stackgen import write
    from stackgen.records import replace
    from stackgen.render import render_tree
    from stackgen.spec import load_spec

    spec = load_spec(CASES[case], CASES[case].name)
    spec = replace(spec, nixpkgs=branch, systems=tuple(s for s in spec.systems if s != "x86_64-darwin"))
    write.apply(write.plan(out, render_tree(spec), spec.source_sha256))


def module_cases() -> list[tuple[str, str]]:
    out = []
    for case, spec in sorted(CASES.items()):
        text = spec.read_text()
        targets = next((line for line in text.splitlines() if line.startswith("targets:")), None)
        for kind, target in (("nixos", "nixos"), ("home", "home-manager")):
            if targets is None or target in targets:
                out.append((case, kind))
    return out


def stub_eval(nix, module: Path) -> dict:
    expr = (
        f"(import {HERE}/stub/eval.nix {{ module = {module}; "
        'externalOptions.programs.nix-ld.libraries.default = [ "<nix-ld defaults>" ]; }).json'
    )
    return json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)


@pytest.mark.parametrize("case,kind", module_cases())
def test_module_evaluates_to_expected_tree(case, kind, tmp_path, nix, request):
    render_spec(CASES[case], tmp_path)
    got = stub_eval(nix, tmp_path / MODULES[kind])
    expected = EXPECTED / f"{case}.{kind}.json"
    if request.config.getoption("--update-golden"):
        EXPECTED.mkdir(exist_ok=True)
        expected.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert expected.exists(), f"no {expected.name}; run pytest --update-golden"
    assert got == json.loads(expected.read_text())


def test_every_expected_tree_has_a_case():
    known = {f"{case}.{kind}.json" for case, kind in module_cases()}
    stale = sorted(p.name for p in EXPECTED.glob("*.json") if p.name not in known)
    assert not stale


def test_reference_stack_nixos_properties(tmp_path, nix):
    render_spec(CASES["ai-stack"], tmp_path)
    cfg = stub_eval(nix, tmp_path / MODULES["nixos"])
    services = cfg["services"]
    # Everything binds loopback and nothing opens the firewall: the spec exposes nothing.
    assert services["ollama"]["host"] == services["llama-cpp"]["host"] == "127.0.0.1"
    assert services["redis"]["servers"]["ai-stack"]["bind"] == "127.0.0.1"
    assert services["qdrant"]["settings"]["service"]["host"] == "127.0.0.1"
    assert "networking" not in cfg
    assert not any(s.get("openFirewall") for s in services.values() if isinstance(s, dict))
    # GPU: CUDA builds, driver and CDI (compose/quadlet are targets too).
    assert services["ollama"]["package"] == "<package ollama-cuda>"
    assert services["llama-cpp"]["package"] == "<package llama-cpp-overridden>"
    assert services["xserver"]["videoDrivers"] == ["nvidia"]
    assert cfg["hardware"]["nvidia-container-toolkit"]["enable"] is True
    assert cfg["nixpkgs"]["config"]["cudaSupport"] is True
    # Telemetry stays off although `environment` is set; open-webui talks to ollama.
    env = services["open-webui"]["environment"]
    assert env["SCARF_NO_ANALYTICS"] == "True" and env["DO_NOT_TRACK"] == "True" and env["ANONYMIZED_TELEMETRY"] == "False"
    assert env["OLLAMA_BASE_URL"] == "http://127.0.0.1:11434"
    # China mirrors first, the CUDA cache kept with its key.
    subs = cfg["nix"]["settings"]["substituters"]
    assert subs[0] == "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store"
    assert subs[-1] == "https://cache.nixos-cuda.org"
    assert cfg["nix"]["settings"]["trusted-public-keys"] == ["cache.nixos-cuda.org:74DUi4Ye579gUqzH4ziL9IyiJBlDpMRn9MBN8oNan9M="]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in cfg["systemd"]["services"]["stackgen-postgres-setup"]["script"]


def load_host(kind: str, case: str = "cpu-only") -> str:
    from stackgen.spec import load_spec

    return load_spec(CASES[case], CASES[case].name).services[kind].host


def test_exposed_services_open_the_firewall_and_secrets_are_wired(tmp_path, nix):
    render_spec(CASES["cpu-only"], tmp_path)
    cfg = stub_eval(nix, tmp_path / MODULES["nixos"])
    services = cfg["services"]
    assert cfg["networking"]["firewall"]["allowedTCPPorts"] == [5432, 6333, 6334]
    assert services["redis"]["servers"]["cpu-box"]["openFirewall"] is True
    # PostgreSQL listens on the spec's address only (enableTCPIP alone would take every interface)
    assert services["postgresql"]["enableTCPIP"] is True
    assert services["postgresql"]["settings"]["listen_addresses"] == load_host("postgres")
    assert services["redis"]["servers"]["cpu-box"]["requirePassFile"] == "/run/secrets/redis-password"
    assert "openFirewall" not in services["ollama"]  # loopback stays closed
    assert "hardware" not in cfg and "package" not in services["ollama"]  # CPU only: no GPU wiring
    setup = cfg["systemd"]["services"]["stackgen-postgres-setup"]
    assert setup["serviceConfig"]["LoadCredential"] == ["password:/run/secrets/postgres-password"]
    assert "ALTER ROLE \"analytics\" WITH LOGIN PASSWORD :'password';" in setup["script"]
    assert cfg["systemd"]["services"]["qdrant"]["serviceConfig"]["EnvironmentFile"] == "/run/secrets/qdrant.env"
    fetch = cfg["systemd"]["services"]["stackgen-fetch-llama-cpp"]
    assert fetch["requiredBy"] == ["llama-cpp.service"]
    assert "https://hf-mirror.com/stackgen-example/tiny-gguf/resolve/main/tiny.gguf" in fetch["script"]
    assert "sha256sum --check" in fetch["script"]


def test_unstable_uses_unstable_option_names(tmp_path, nix):
    render_spec(CASES["unstable"], tmp_path)
    cfg = stub_eval(nix, tmp_path / MODULES["nixos"])
    llama = cfg["services"]["llama-cpp"]
    assert "extraFlags" not in llama and "model" not in llama
    assert llama["settings"] == {"host": "127.0.0.1", "port": 8080, "model": "/srv/models/model.gguf", "ctx-size": 8192, "n-gpu-layers": 40}
    assert cfg["services"]["ollama"]["modelsDir"] == "/var/lib/ollama/models" and "models" not in cfg["services"]["ollama"]
    assert cfg["hardware"]["nvidia"]["open"] is False


def test_home_module_containers(tmp_path, nix):
    render_spec(CASES["ai-stack"], tmp_path)
    cfg = stub_eval(nix, tmp_path / MODULES["home"])
    assert cfg["services"]["ollama"]["acceleration"] == "cuda"
    containers = cfg["services"]["podman"]["containers"]
    assert containers["ai-stack-llama-cpp"]["devices"] == ["nvidia.com/gpu=all"]
    for name, c in containers.items():
        assert ":latest" not in c["image"]
        assert all(p.startswith("127.0.0.1:") for p in c.get("ports", [])), name
    assert containers["ai-stack-postgres"]["environment"] == {"POSTGRES_DB": "aidb", "POSTGRES_HOST_AUTH_METHOD": "trust"}
    assert cfg["stackgen"]["ollamaModels"] == ["llama3.2:3b", "qwen2.5:7b"]
    assert cfg["systemd"]["user"]["services"]["ollama-models"]["Unit"]["After"] == ["ollama.service"]
    # Ollama is home-manager's own user service, not a container: Open WebUI shares the host's
    # network to reach it on loopback, and depends on its unit.
    assert "ai-stack-ollama" not in containers
    webui = containers["ai-stack-open-webui"]
    assert webui["network"] == ["host"] and "ports" not in webui
    assert webui["environment"]["OLLAMA_BASE_URL"] == "http://127.0.0.1:11434"
    assert webui["environment"]["OPENAI_API_BASE_URL"] == "http://127.0.0.1:8080/v1"  # llama.cpp's published port
    assert webui["extraConfig"]["Unit"]["Requires"] == ["ollama.service", "podman-ai-stack-llama-cpp.service"]
    assert webui["extraConfig"]["Container"]["HealthCmd"] == "curl --globoff -fsS http://127.0.0.1:3000/health >/dev/null"


# Password and environment files with the characters systemd would expand.
HM_SECRETS = {
    "postgres.passwordFile": "/run/secrets/pg%pass$x",
    "redis.passwordFile": "/run/secrets/r${HOME}",
    "qdrant.environmentFile": "/run/q%h.env",
    "openWebui.environmentFile": "/run/w$x.env",
}


def home_container_cases() -> list[str]:
    from stackgen.spec import load_spec

    cases = [case for case, kind in module_cases() if kind == "home"]
    return [case for case in cases if set(load_spec(CASES[case], CASES[case].name).services) - {"ollama"}]


@pytest.mark.parametrize("secrets", ["none", "set"])
@pytest.mark.parametrize("case", home_container_cases())
def test_home_containers_are_the_planned_containers(case, secrets, tmp_path, nix):
    """Each `services.podman.containers` entry is containers.plan()'s Container, escaped for
    home-manager's Quadlet unit, with the password files the `stackgen.*` options name."""
    from stackgen.records import replace

    from stackgen import containers as ctrs
    from stackgen.escape import hm_quadlet_env, systemd_raw, systemd_words
    from stackgen.spec import load_spec
    from stackgen.targets.compose import port_binding

    render_spec(CASES[case], tmp_path)
    files = HM_SECRETS if secrets == "set" else dict.fromkeys(HM_SECRETS)
    settings = " ".join(f"stackgen.{name} = {nix_literal(path)};" for name, path in files.items())
    wrapper = tmp_path / "with-secrets.nix"
    wrapper.write_text(f"{{ imports = [ ./nix/home.nix ]; config = {{ {settings} }}; }}")
    got = stub_eval(nix, wrapper)["services"]["podman"]["containers"]

    spec = load_spec(CASES[case], CASES[case].name)
    # kind -> the file its stackgen.* option names (a password or environment file, mounted)
    secret_files = {"postgres": "postgres.passwordFile", "redis": "redis.passwordFile", "qdrant": "qdrant.environmentFile", "open-webui": "openWebui.environmentFile"}
    secret_keys = {"postgres": "password_file", "redis": "password_file", "qdrant": "api_key_file", "open-webui": "secret_key_file"}
    services = {}
    for name, svc in spec.services.items():
        options = dict(svc.options)
        if svc.kind in secret_keys:
            options[secret_keys[svc.kind]] = files[secret_files[svc.kind]]
        services[name] = replace(svc, options=options)
    # natively run: Ollama, an app with command: (a user service); their container clients
    # (Open WebUI, and a container or image app that uses one) share the host's network
    native = {n for n, s in spec.services.items() if s.kind == "ollama" or s.kind == "app" and s.options["command"]}
    host_network = [n for n, s in spec.services.items() if s.kind == "open-webui" and spec.has("ollama")]
    host_network += [n for n, s in spec.services.items() if n not in native and set(s.options.get("uses", ())) & native]
    plan = [c for c in ctrs.plan(replace(spec, services=services), lambda name: f"{spec.name}-{name}", host_network) if not c.oneshot]
    assert sorted(got) == sorted(f"{spec.name}-{c.name}" for c in plan if c.name not in native)
    for ctr in plan:
        if ctr.name in native:
            continue
        c = got[f"{spec.name}-{ctr.name}"]
        assert c["image"] == systemd_raw(ctr.image)
        assert c.get("ports", []) == [systemd_raw(port_binding(*p)) for p in ctr.ports]
        assert c.get("environment", {}) == {k: hm_quadlet_env(v) for k, v in ctr.env.items()}
        assert c.get("exec") == (systemd_words(ctr.command) if ctr.command else None)
        assert c.get("devices", []) == ([ctrs.GPU_DEVICE] if ctr.gpu else [])
        if ctr.health:
            assert c["extraConfig"]["Container"]["HealthCmd"] == systemd_raw(ctr.health.command)
            assert c["extraConfig"]["Container"]["Notify"] == "healthy"
        else:
            assert "Container" not in c["extraConfig"]
        mounts = [f"{spec.name}-{name}.volume:{path}" for name, path in ctr.volumes]
        mounts += [systemd_raw(f"{host}:{path}:ro") for host, path in ctr.binds]
        mounts += [systemd_raw(f"{host}:{ctrs.secret_path(name)}:ro") for name, host in ctr.secrets]
        assert [m for m in c.get("volumes", []) if "-postgres-init.sql:" not in m] == mounts
        assert "environmentFile" not in c  # podman would hand its lines to the container itself
        if ctr.kind in ("qdrant", "open-webui") and secrets == "set":  # the environment file is read in the container
            assert c["exec"].startswith("sh -c ") and systemd_raw(ctrs.secret_path(ctr.secrets[0][0])) in c["exec"]


def nix_literal(value: str | None) -> str:
    from stackgen.escape import nix_value

    return nix_value(value)


# --- the real module system -------------------------------------------------------------


def real_eval(nix, lib: Path, mirror: str, module: Path, check: bool = True):
    expr = f"import {HERE}/options/eval.nix {{ lib = import {lib}; mirror = {HERE}/options/{mirror}; module = {module}; }}"
    return nix("--eval", "--strict", "--json", "-E", expr, check=check)


@pytest.mark.parametrize("branch", sorted(BRANCH))
@pytest.mark.parametrize("case,kind", module_cases())
def test_module_typechecks_against_nixpkgs_options(case, kind, branch, tmp_path, nix, nixpkgs_lib):
    render_on(case, branch, tmp_path)
    got = json.loads(real_eval(nix, nixpkgs_lib, f"{kind}-{BRANCH[branch]}.nix", tmp_path / MODULES[kind]).stdout)
    assert got["failedAssertions"] == []
    assert got["unfreeExtensions"] == []  # nixpkgs would refuse to build them
    if case == "unstable" and kind == "nixos":  # its GGUF download has no sha256
        assert got["warnings"] == ["stackgen.modelFetch.files.llama-cpp has no sha256: https://example.org/model.gguf is downloaded unverified"]
    else:
        assert got["warnings"] == []


BREAKAGES = {
    "a port as a string": ("port = mkDefault 11434;", 'port = mkDefault "11434";', "is not of type `16 bit unsigned integer"),
    "a model that is not a string": ('loadModels = mkDefault [ "llama3.2:3b"', "loadModels = mkDefault [ 3", "is not of type `string'"),
    "an option nixpkgs does not have": ("enable = mkDefault true;", "enable = mkDefault true; acceleration = \"cuda\";", "does not exist"),
    "a secret as a Nix path": ("default = null;", "default = ./secret;", "is not of type `null or string matching"),
}


@pytest.mark.parametrize("what", sorted(BREAKAGES))
def test_real_evaluation_rejects_a_broken_module(what, tmp_path, nix, nixpkgs_lib):
    render_spec(CASES["ai-stack"], tmp_path)
    old, new, message = BREAKAGES[what]
    module = tmp_path / MODULES["nixos"]
    text = module.read_text()
    assert old in text
    module.write_text(text.replace(old, new, 1))
    proc = real_eval(nix, nixpkgs_lib, mirror_of("ai-stack"), module, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


@pytest.mark.parametrize("rendered_for,mirror,message", [
    ("nixos-26.05", "nixos-26.11.nix", "The option `services.llama-cpp.extraFlags' does not exist"),
    ("nixos-26.05", "nixos-unstable.nix", "The option `services.llama-cpp.extraFlags' does not exist"),
    ("nixos-26.11", "nixos-26.05.nix", "The option `services.llama-cpp.settings' does not exist"),
    ("nixos-unstable", "nixos-26.05.nix", "The option `services.llama-cpp.settings' does not exist"),
])
def test_options_are_keyed_on_the_branch(rendered_for, mirror, message, tmp_path, nix, nixpkgs_lib):
    """The mirrors really differ: a module rendered for one branch fails on the other's shapes."""
    render_on("ai-stack", rendered_for, tmp_path)
    proc = real_eval(nix, nixpkgs_lib, mirror, tmp_path / MODULES["nixos"], check=False)
    assert proc.returncode != 0 and message in proc.stderr


def test_missing_driver_fails_the_toolkit_assertion(tmp_path, nix, nixpkgs_lib):
    """The mirror really carries nixpkgs' assertion: without "nvidia" in videoDrivers it fails."""
    render_spec(CASES["ai-stack"], tmp_path)
    module = tmp_path / "nix/modules/nixos/nvidia.nix"
    module.write_text(module.read_text().replace('services.xserver.videoDrivers = [ "nvidia" ];', ""))
    got = json.loads(real_eval(nix, nixpkgs_lib, mirror_of("ai-stack"), tmp_path / MODULES["nixos"]).stdout)
    assert got["failedAssertions"] == ["`nvidia-container-toolkit` requires nvidia drivers: add \"nvidia\" to `services.xserver.videoDrivers`"]


def test_users_override_the_gpu_defaults(tmp_path, nix, nixpkgs_lib):
    """stackgen.nvidia.* carry the spec's choices as defaults: a pre-Turing owner sets open = false."""
    render_spec(CASES["ai-stack"], tmp_path)
    wrapper = tmp_path / "with-override.nix"
    wrapper.write_text(f"{{ imports = [ {tmp_path / MODULES['nixos']} ]; stackgen.nvidia.open = false; stackgen.nvidia.containerToolkit = false; }}\n")
    proc = real_eval(nix, nixpkgs_lib, mirror_of("ai-stack"), wrapper, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["failedAssertions"] == []


@pytest.mark.parametrize("host, listen", [("::1", "[::1]"), ("::", "[::]"), ("fe80::1%eth0", "[fe80::1%%eth0]"), ("127.0.0.1", "127.0.0.1")])
def test_ollama_ipv6_hosts_are_bracketed_for_ollama_host(host, listen, tmp_path, nix):
    """nixpkgs and home-manager write OLLAMA_HOST=<host>:<port>; Ollama splits it with Go's
    net.SplitHostPort, which needs an IPv6 address in brackets ("::1:11434" fails to listen)."""
    from conftest import render_text

    targets = "[nixos]" if "%" in host else "[nixos, home-manager]"  # home-manager refuses a zone
    render_text(f'version: 1\nname: v6\ntargets: {targets}\nservices:\n  ollama: {{host: "{host}"}}\n', tmp_path)
    assert stub_eval(nix, tmp_path / MODULES["nixos"])["services"]["ollama"]["host"] == listen
    if "%" not in host:
        assert stub_eval(nix, tmp_path / MODULES["home"])["services"]["ollama"]["host"] == listen


def test_instances_and_generic_services_on_nixos(tmp_path, nix):
    """mcp-gateway on NixOS: the second llama.cpp server as its own hardened unit, the app as a
    hardened unit wired to the units it uses with addresses on this machine, and the container
    through oci-containers on the host's network (where the redis it uses listens)."""
    render_spec(CASES["mcp-gateway"], tmp_path)
    cfg = stub_eval(nix, tmp_path / MODULES["nixos"])
    units = cfg["systemd"]["services"]
    coder = units["llama-cpp-coder"]
    assert coder["serviceConfig"]["DynamicUser"] is True and coder["serviceConfig"]["ProtectSystem"] == "strict"
    assert coder["serviceConfig"]["ExecStart"].endswith("/bin/llama-server --host 127.0.0.1 --port 8081 --model /var/lib/llama-cpp/models/qwen2.5-coder-7b-q4_k_m.gguf --ctx-size 16384 --n-gpu-layers 999")
    app = units["mcp-gateway-gateway"]
    assert app["requires"] == ["postgresql.service", "stackgen-postgres-setup.service", "redis-mcp-gateway.service", "qdrant.service", "llama-cpp.service", "llama-cpp-coder.service"]
    assert set(app["requires"]) <= set(app["after"])
    env = app["environment"]
    assert env["DATABASE_URL"] == "postgresql://gateway@127.0.0.1:5432/gateway"
    assert env["REDIS_URL"] == "redis://127.0.0.1:6379" and env["CODER_URL"] == "http://127.0.0.1:8081"
    assert env["LOG_LEVEL"] == "info"
    sc = app["serviceConfig"]
    assert sc["DynamicUser"] is True and sc["StateDirectory"] == "mcp-gateway-gateway" and sc["Restart"] == "on-failure"
    assert sc["ExecStart"].endswith("/bin/env uv run uvicorn gateway.main:app --host 127.0.0.1 --port 8091")
    ctr = cfg["virtualisation"]["oci-containers"]["containers"]["mcp-gateway-redis-insight"]
    assert ctr["image"] == "docker.io/redis/redisinsight:2.58"
    assert ctr["environment"] == {"REDIS_URL": "redis://127.0.0.1:6379"}
    assert "--network=host" in ctr["extraOptions"]
    assert units["podman-mcp-gateway-redis-insight"]["requires"] == ["redis-mcp-gateway.service"]


def test_app_secrets_reach_nixos_units_as_credentials(tmp_path, nix):
    """A used service's secret reaches a DynamicUser app as LoadCredential= and a %d/ path in
    its *_FILE variable, never as a value; `%` in paths and env values stays literal."""
    from conftest import render_text

    spec = (
        "version: 1\nname: s\ntargets: [nixos]\nservices:\n"
        "  api:\n    kind: app\n    command: [/srv/api/bin/api, --greeting, 'a b%n $HOME']\n    uses: [cache, box]\n    env: {PCT: '50%'}\n"
        "  cache:\n    kind: redis\n    password_file: /run/secrets/re%dis\n"
        "  box:\n    kind: container\n    image: docker.io/library/nginx:1.27\n    port: 8088\n    container_port: 80\n"
        "  cache2:\n    kind: redis\n    port: 6380\n"
    )
    render_text(spec, tmp_path)
    cfg = stub_eval(nix, tmp_path / MODULES["nixos"])
    app = cfg["systemd"]["services"]["s-api"]
    assert app["serviceConfig"]["LoadCredential"] == ["cache-password:/run/secrets/re%%dis"]
    assert app["environment"]["CACHE_PASSWORD_FILE"] == "%d/cache-password"
    assert app["environment"]["PCT"] == "50%%"
    assert app["serviceConfig"]["ExecStart"] == '/srv/api/bin/api --greeting "a b%%n $$HOME"'
    assert app["requires"] == ["redis-s.service", "podman-s-box.service"]
    assert cfg["virtualisation"]["oci-containers"]["containers"]["s-box"]["ports"] == ["127.0.0.1:8088:80"]
    assert set(cfg["services"]["redis"]["servers"]) == {"s", "s-cache2"}
    assert cfg["services"]["redis"]["servers"]["s-cache2"]["port"] == 6380
