"""compose.yaml and the Quadlet units, checked by the real tools that read them.

- compose: the compose-spec JSON schema (check-jsonschema), docker-compose 2.x `config`
  (strict: unknown keys, bad types, undefined depends_on targets) and podman-compose `config`.
- Quadlet: podman 5's quadlet generator (`-dryrun`), which rejects unknown keys.
- Escaping: what podman-compose and systemd (from the ExecStart= that quadlet generates) hand to
  podman must be exactly the values `containers.plan` decided, `$` and `%` included.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import golden_cases, render_spec, render_text, require_tool
from stackgen import containers
from stackgen.services import llama_cpp, open_webui
from stackgen.escape import compose_str, hm_quadlet_env, systemd_raw, systemd_word
from stackgen.spec import load_spec

CASES = golden_cases()
EDGE = CASES["containers-secrets"]


def cases_with(target: str) -> list[str]:
    return [name for name, spec in sorted(CASES.items()) if target in load_spec(spec, spec.name).targets]


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, spec in CASES.items():
        out[name] = tmp_path_factory.mktemp(name)
        render_spec(spec, out[name])
    return out


# ---------------------------------------------------------------- compose


def test_the_compose_and_quadlet_targets_have_golden_cases():
    assert len(cases_with("compose")) >= 2 and len(cases_with("quadlet")) >= 2


@pytest.mark.parametrize("case", cases_with("compose"))
def test_compose_matches_the_compose_spec_schema(case, rendered):
    tool = require_tool("check-jsonschema", "it carries the compose-spec JSON schema")
    run(tool, "--builtin-schema", "vendor.compose-spec", str(rendered[case] / "compose.yaml"))


@pytest.mark.parametrize("case", cases_with("compose"))
def test_docker_compose_accepts_compose_yaml(case, rendered):
    tool = require_tool("docker-compose", "Debian 13's docker-compose 2.x validates compose files strictly")
    assert run(tool, "version", "--short").stdout.startswith("2.")
    # no env_file: docker-compose would need the (secret) file here, and podman-compose would put its lines on argv
    assert all("env_file" not in svc for svc in yaml.safe_load((rendered[case] / "compose.yaml").read_text())["services"].values())
    run(tool, "-f", "compose.yaml", "config", "--quiet", cwd=rendered[case])


@pytest.mark.parametrize("case", cases_with("compose"))
def test_podman_compose_reads_compose_yaml(case, rendered):
    config = podman_compose_config(rendered[case])
    spec = load_spec(CASES[case], CASES[case].name)
    # every service, and the model pull jobs; a service behind a profile only when it is active
    planned = [c.name for c in containers.plan(spec, peer=lambda name: name) if not c.profiles]
    assert sorted(config["services"]) == sorted(planned)


def podman_compose_config(tree: Path) -> dict:
    require_tool("podman", "podman-compose asks podman for its version")
    tool = require_tool("podman-compose")
    return yaml.safe_load(run(tool, "-f", "compose.yaml", "config", cwd=tree).stdout)


def test_schema_and_docker_compose_reject_a_broken_file(tmp_path):
    """The validators above can fail: an unknown key and a dangling depends_on."""
    schema = require_tool("check-jsonschema")
    compose = require_tool("docker-compose")
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  a:\n    image: x.org/a:1\n    bogus: 1\n")
    assert subprocess.run([schema, "--builtin-schema", "vendor.compose-spec", str(bad)], capture_output=True).returncode != 0
    bad.write_text("services:\n  a:\n    image: x.org/a:1\n    depends_on: {b: {condition: service_healthy}}\n")
    assert subprocess.run([compose, "-f", str(bad), "config", "--quiet"], capture_output=True).returncode != 0


def test_reference_stack_compose(rendered):
    data = yaml.safe_load((rendered["ai-stack"] / "compose.yaml").read_text())
    assert "version" not in data and data["name"] == "ai-stack"
    services = data["services"]
    assert list(services) == ["ollama", "ollama-models", "llama-cpp", "postgres", "redis", "qdrant", "open-webui"]
    # the models are pulled by a one-shot job once Ollama is healthy (no stackgen at run time)
    job = services.pop("ollama-models")
    assert job["depends_on"] == {"ollama": {"condition": "service_healthy"}} and job["restart"] == "no"
    assert job["command"] == ["llama3.2:3b", "qwen2.5:7b"] and job["environment"] == {"OLLAMA_HOST": "ollama:11434"}
    for name, svc in services.items():
        assert re.fullmatch(r"[a-z0-9.-]+/[a-z0-9./_-]+:[A-Za-z0-9._-]+", svc["image"]), svc["image"]
        assert not svc["image"].endswith(":latest")
        assert all(p.startswith("127.0.0.1:") for p in svc["ports"]), name
        assert svc["healthcheck"]["test"][0] == "CMD-SHELL"
        assert "deploy" not in svc
    assert services["ollama"]["devices"] == ["nvidia.com/gpu=all"]
    assert services["llama-cpp"]["devices"] == ["nvidia.com/gpu=all"]
    assert services["llama-cpp"]["image"] == llama_cpp.CUDA_IMAGE
    assert "devices" not in services["postgres"]
    assert services["postgres"]["image"] == "docker.io/pgvector/pgvector:0.8.1-pg17"
    assert services["open-webui"]["depends_on"] == {
        "ollama": {"condition": "service_healthy"},
        "llama-cpp": {"condition": "service_healthy"},
    }
    assert services["open-webui"]["environment"]["OLLAMA_BASE_URL"] == "http://ollama:11434"
    # mirrors.region china: the Hugging Face and PyPI mirrors reach the containers that download
    assert services["open-webui"]["environment"]["HF_ENDPOINT"] == "https://hf-mirror.com"
    assert services["open-webui"]["environment"]["PIP_INDEX_URL"] == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert services["llama-cpp"]["environment"]["HF_ENDPOINT"] == "https://hf-mirror.com"
    assert set(data["volumes"]) == {"ollama-data", "postgres-data", "redis-data", "qdrant-data", "open-webui-data"}
    init = (rendered["ai-stack"] / "compose" / "postgres-init.sql").read_text()
    assert '\\connect "aidb"\nCREATE EXTENSION IF NOT EXISTS "vector";' in init


def test_cpu_stack_gets_the_cpu_llama_cpp_image_and_no_devices(tmp_path):
    files = render_text("version: 1\nname: cpu\ntargets: [compose]\nservices:\n  llama-cpp: {model: /m/a.gguf}\n", tmp_path)
    svc = yaml.safe_load(files["compose.yaml"])["services"]["llama-cpp"]
    assert svc["image"] == llama_cpp.IMAGE and "devices" not in svc
    assert "--n-gpu-layers" not in svc["command"]


def test_secrets_come_from_files_and_never_inline(rendered):
    data = yaml.safe_load((rendered["containers-secrets"] / "compose.yaml").read_text())
    # api_key_file and secret_key_file are environment files (KEY=value), as on NixOS, mounted
    # as secrets and read in the container: an env_file would put the key on podman's command line
    assert data["secrets"] == {
        "postgres-password": {"file": "/run/secrets/pg%pass"},
        "redis-password": {"file": "/run/secrets/redis-pass"},
        "qdrant-api-key": {"file": "/run/secrets/qdrant-key"},
        "open-webui-secret-key": {"file": "/run/secrets/webui-key"},
    }
    for kind, secret, command in (("qdrant", "qdrant-api-key", ["./entrypoint.sh"]), ("open-webui", "open-webui-secret-key", ["bash", "start.sh"])):
        svc = data["services"][kind]
        assert "env_file" not in svc and svc["secrets"] == [secret]
        assert svc["command"][:2] == ["sh", "-c"] and svc["command"][3:] == ["stackgen-env", f"/run/secrets/{secret}", *command]
    assert "QDRANT__SERVICE__API_KEY" not in yaml.safe_dump(data)
    pg = data["services"]["postgres"]
    assert pg["secrets"] == ["postgres-password"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    assert "POSTGRES_HOST_AUTH_METHOD" not in pg["environment"]
    assert pg["volumes"][0] == "postgres-data:/var/lib/postgresql"  # PostgreSQL 18's layout


# ---------------------------------------------------------------- quadlet


def quadlet_dryrun(units: Path, user: bool = True) -> subprocess.CompletedProcess:
    tool = require_tool("quadlet", "podman 5's quadlet generator (from Debian 13) checks the units")
    return subprocess.run(
        [tool, "-dryrun"] + (["-user"] if user else []),
        capture_output=True,
        text=True,
        env={**os.environ, "QUADLET_UNIT_DIRS": str(units)},
    )


def generated_units(stdout: str) -> dict[str, str]:
    parts = re.split(r"^---(.+)---$", stdout, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.mark.parametrize("case", cases_with("quadlet"))
@pytest.mark.parametrize("user", [True, False], ids=["user", "system"])
def test_quadlet_generator_accepts_the_units(case, user, rendered):
    units = rendered[case] / "quadlet"
    proc = quadlet_dryrun(units, user)
    assert proc.returncode == 0, proc.stderr
    noise = [line for line in proc.stderr.splitlines() if "Loading source unit file" not in line]
    assert not noise, "quadlet warned:\n" + "\n".join(noise)
    spec = load_spec(CASES[case], CASES[case].name)
    services = generated_units(proc.stdout)
    for kind in spec.services:
        unit = services[f"{spec.name}-{kind}.service"]
        assert "--sdnotify=healthy" in unit and "--health-cmd" in unit
        assert "WantedBy=default.target" in unit
    assert f"{spec.name}-network.service" in services


def test_quadlet_generator_rejects_a_broken_unit(tmp_path):
    (tmp_path / "x.container").write_text("[Container]\nImage=x.org/a:1\nBogusKey=1\n")
    assert quadlet_dryrun(tmp_path).returncode != 0


def test_reference_stack_quadlet(rendered):
    units = rendered["ai-stack"] / "quadlet"
    webui = (units / "ai-stack-open-webui.container").read_text()
    assert "Requires=ai-stack-ollama.service\nAfter=ai-stack-ollama.service\n" in webui
    assert 'Environment=OLLAMA_BASE_URL=http://ai-stack-ollama:11434\n' in webui
    ollama = (units / "ai-stack-ollama.container").read_text()
    for line in ("AddDevice=nvidia.com/gpu=all", "Notify=healthy", "PublishPort=127.0.0.1:11434:11434",
                 "Volume=ai-stack-ollama-data.volume:/root/.ollama", "Network=ai-stack.network"):  # fmt: skip
        assert line + "\n" in ollama
    assert (units / "ai-stack.network").read_text().endswith("[Network]\nNetworkName=ai-stack\n")


# ---------------------------------------------------------------- escaping, end to end


def systemd_exec_words(line: str) -> list[str]:
    """Split an ExecStart= value the way systemd does: quotes, C escapes, then %% and $$.

    Fails on a lone `$NAME` or `%x` outside the few specifiers quadlet itself writes: those
    would be expanded by systemd and change the value.
    """
    words, i = [], 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        word, quote = "", None
        while i < len(line) and (quote or line[i] != " "):
            ch = line[i]
            if ch == "\\":
                word += {"n": "\n", "t": "\t"}.get(line[i + 1], line[i + 1])
                i += 2
                continue
            if quote and ch == quote:
                quote = None
            elif not quote and ch in "\"'":
                quote = ch
            else:
                word += ch
            i += 1
        words.append(word)
    out = []
    for word in words:
        assert not re.search(r"(?<!\$)\$(\$\$)*[A-Za-z_{]", word), f"systemd would expand a variable in {word!r}"
        stripped = re.sub(r"%[tN]", "", word.replace("%%", ""))
        assert "%" not in stripped, f"systemd would expand a specifier in {word!r}"
        out.append(word.replace("%%", "%").replace("$$", "$"))
    return out


def podman_run_args(words: list[str]) -> dict[str, list[str]]:
    """The options of a `podman run` command line, and its image and command."""
    assert words[:3] == ["/usr/bin/podman", "run", "--name"]
    opts: dict[str, list[str]] = {}
    i = 2
    flags = {"--replace", "--rm", "-d"}
    while words[i].startswith("-"):
        if words[i] in flags or "=" in words[i]:
            i += 1
            continue
        opts.setdefault(words[i], []).append(words[i + 1])
        i += 2
    opts["image"], opts["command"] = [words[i]], words[i + 1 :]
    return opts


def test_values_reach_podman_unchanged_through_quadlet_and_systemd(rendered):
    spec = load_spec(EDGE, EDGE.name)
    plan = {c.kind: c for c in containers.plan(spec, peer=lambda kind: f"{spec.name}-{kind}")}
    proc = quadlet_dryrun(rendered["containers-secrets"] / "quadlet")
    assert proc.returncode == 0, proc.stderr
    for name, unit in generated_units(proc.stdout).items():
        kind = name.removeprefix(f"{spec.name}-").removesuffix(".service")
        if kind not in plan:
            continue
        ctr = plan[kind]
        exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1)
        args = podman_run_args(systemd_exec_words(exec_start))
        assert args["image"] == [ctr.image]
        assert args["command"] == list(ctr.command)
        assert args["--health-cmd"] == [ctr.health.command]
        assert sorted(args.get("--env", [])) == sorted(f"{k}={v}" for k, v in ctr.env.items())
        mounts = args.get("-v", [])
        for host, path in ctr.binds:
            assert f"{host}:{path}:ro" in mounts
        for secret, host_file in ctr.secrets:
            assert f"{host_file}:/run/secrets/{secret}:ro" in mounts
    # the edge case really carries the characters this is about
    assert "%" in plan["llama-cpp"].binds[0][0] and "$" in plan["open-webui"].env["PIP_INDEX_URL"]


def test_values_reach_podman_unchanged_through_podman_compose(rendered):
    spec = load_spec(EDGE, EDGE.name)
    config = podman_compose_config(rendered["containers-secrets"])
    for ctr in containers.plan(spec, peer=lambda kind: kind):
        svc = config["services"][ctr.kind]
        assert svc.get("environment", {}) == ctr.env
        assert svc.get("command", []) == list(ctr.command)
        assert svc["healthcheck"]["test"] == ["CMD-SHELL", ctr.health.command]
        for host, path in ctr.binds:
            assert f"{host}:{path}:ro" in svc["volumes"]


# ---------------------------------------------------------------- escape functions


def test_compose_str_doubles_dollars_only():
    assert compose_str("a$b${c}$$%") == "a$$b$${c}$$$$%"


def test_systemd_escapes():
    assert systemd_raw("50% of $HOME") == "50%% of $$HOME"
    assert systemd_word('say "hi" \\ 5% $x') == '"say \\"hi\\" \\\\ 5%% $$x"'
    for bad in ("a\nb", "ends in \\", '"quoted"'):
        with pytest.raises(ValueError):
            systemd_raw(bad)
    with pytest.raises(ValueError):
        systemd_word("a\rb")


def test_home_manager_environment_values():
    # home-manager writes Environment=NAME=value unquoted (no whitespace): only systemd's two
    # expansions need doubling; what its quoting would change is refused.
    assert hm_quadlet_env("https://h/a%20b$c${d}") == "https://h/a%%20b$$c$${d}"
    for bad in ("a b", 'a"b', "a'b", "a\\b", "a\nb"):
        with pytest.raises(ValueError):
            hm_quadlet_env(bad)


# ---------------------------------------------------------------- host network (home-manager)


def test_open_webui_on_the_host_network_reaches_its_peers_where_the_host_does():
    spec = load_spec(CASES["unstable"], CASES["unstable"].name)  # ollama and open-webui on 0.0.0.0
    plan = {c.kind: c for c in containers.plan(spec, peer=lambda kind: f"x-{kind}", host_network=("open-webui",))}
    webui = plan["open-webui"]
    assert webui.host_network and webui.ports == ()
    assert webui.env["HOST"] == "0.0.0.0" and webui.env["PORT"] == "8088"
    assert webui.env["OLLAMA_BASE_URL"] == "http://127.0.0.1:11434"
    assert webui.env["OPENAI_API_BASE_URL"] == "http://127.0.0.1:8080/v1"
    assert webui.health.command == "curl --globoff -fsS http://127.0.0.1:8088/health >/dev/null"
    assert not plan["llama-cpp"].host_network and plan["llama-cpp"].ports == (("127.0.0.1", 8080, 8080),)
    with pytest.raises(AssertionError):
        containers.plan(spec, peer=lambda kind: kind, host_network=("ollama",))
