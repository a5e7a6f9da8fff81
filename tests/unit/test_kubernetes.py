"""The kubernetes target, checked by the real consumers: `kustomize build` of k8s/ piped into
`kubeconform -strict` against Kubernetes' own schemas (v1.35.0, converted by
tests/kubeschemas.py), the kubelet's own $(VAR) expansion code (compiled from the
k8s.io/kubernetes module) for every string that reaches a command, args or env value, and
/bin/sh for the init scripts. What only a real cluster can show (images pulled, probes passing,
claims bound, GPUs scheduled) is listed in the README."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLES, ROOT, SPECS, render_text, require_tool

KUBERNETES_VERSION = "v1.35.0"
SCHEMAS = ROOT / ".venv" / "k8s-schemas" / KUBERNETES_VERSION
SEEDS = {
    "mcp-gateway": SPECS / "valid" / "mcp-gateway.yaml",
    "tutor": SPECS / "valid" / "tutor.yaml",
    "cortex": SPECS / "valid" / "cortex.yaml",
    "ai-stack": EXAMPLES / "ai-stack.yaml",
    "k8s-ai-stack": SPECS / "valid" / "k8s-ai-stack.yaml",
}
RECOMMENDED = ("name", "instance", "component", "part-of", "managed-by")


def _fail_or_skip(message: str):
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def schemas() -> Path:
    if not (SCHEMAS / "statefulset-apps-v1.json").is_file():
        _fail_or_skip(f"no Kubernetes schemas in {SCHEMAS} (tests/install-deps.sh converts them)")
    return SCHEMAS


@pytest.fixture(scope="session")
def kubeconform(schemas):
    binary = require_tool("kubeconform", "validates the rendered manifests")
    location = str(schemas) + "/{{ .ResourceKind }}{{ .KindSuffix }}.json"

    def run(text: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [binary, "-strict", "-summary", "-schema-location", location, "-"],
            input=text, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    return run


@pytest.fixture(scope="session")
def kustomize():
    binary = require_tool("kustomize", "builds the rendered k8s/ base")

    def build(folder: Path) -> str:
        proc = subprocess.run([binary, "build", str(folder)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return build


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if go is None:
        _fail_or_skip("go is not installed (tests/install-deps.sh builds the Kubernetes tools with it)")
    return go


@pytest.fixture(scope="session")
def expand(tmp_path_factory):
    """The kubelet's expansion of a container's env values (each with the ones before it) and
    command/args (with all of them), compiled from k8s.io/kubernetes' own expand.go: returns
    (env, command, args) as the process receives them."""
    go = _go()
    proc = subprocess.run([go, "mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES_VERSION}"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        _fail_or_skip(f"go mod download k8s.io/kubernetes@{KUBERNETES_VERSION} failed: {proc.stderr[-500:]}")
    source = Path(json.loads(proc.stdout)["Dir"]) / "third_party/forked/golang/expansion/expand.go"
    work = tmp_path_factory.mktemp("expand")
    (work / "expansion").mkdir()
    shutil.copyfile(source, work / "expansion" / "expand.go")  # read at test time only, never kept
    (work / "go.mod").write_text("module expandcheck\n\ngo 1.22\n")
    (work / "main.go").write_text(EXPAND_MAIN)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", CGO_ENABLED="0")
    built = subprocess.run([go, "build", "-o", str(work / "expand"), "."], cwd=work, capture_output=True, text=True, env=env, timeout=300)
    assert built.returncode == 0, built.stderr

    def run(container: dict) -> tuple[dict, list, list]:
        request = {
            "env": [[e["name"], e["value"]] for e in container.get("env", [])],
            "command": container.get("command", []),
            "args": container.get("args", []),
        }
        out = subprocess.run([str(work / "expand")], input=json.dumps(request), capture_output=True, text=True, check=True, timeout=60)
        got = json.loads(out.stdout)
        return dict(got["env"]), got["command"], got["args"]

    return run


# What kubelet_pods.go (makeEnvironmentVariables) and kubecontainer.ExpandContainerCommandAndArgs do.
EXPAND_MAIN = """package main

import (
	"encoding/json"
	"os"

	"expandcheck/expansion"
)

type request struct {
	Env     [][2]string `json:"env"`
	Command []string    `json:"command"`
	Args    []string    `json:"args"`
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		panic(err)
	}
	tmp := map[string]string{}
	env := [][2]string{}
	for _, e := range req.Env {
		value := expansion.Expand(e[1], expansion.MappingFuncFor(tmp))
		tmp[e[0]] = value
		env = append(env, [2]string{e[0], value})
	}
	mapping := expansion.MappingFuncFor(tmp)
	command, args := []string{}, []string{}
	for _, c := range req.Command {
		command = append(command, expansion.Expand(c, mapping))
	}
	for _, a := range req.Args {
		args = append(args, expansion.Expand(a, mapping))
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"env": env, "command": command, "args": args})
}
"""


def _with_kubernetes(path: Path) -> str:
    """The spec with kubernetes added to its targets, and each app built only from `build:`
    given the image a cluster would pull (as a user pushes it to a registry)."""
    data = yaml.safe_load(path.read_text())
    targets = data.get("targets") or ["devshell", "nixos", "home-manager", "compose", "quadlet", "mirrors"]
    data["targets"] = sorted(set(targets) | {"kubernetes"})
    for name, svc in data["services"].items():
        if (svc or {}).get("kind") == "app" and not svc.get("image"):
            svc["image"] = f"registry.example.com/{data['name']}-{name}:1.0"
    return yaml.safe_dump(data, sort_keys=False)


def _render(text: str, out: Path) -> Path:
    render_text(text, out)
    return out / "k8s"


def _objects(built: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(built) if d]


def _by(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, kustomize):
    """k8s-ai-stack rendered and built: (k8s folder, built objects, built text)."""
    folder = _render(SEEDS["k8s-ai-stack"].read_text(), tmp_path_factory.mktemp("ref"))
    built = kustomize(folder)
    return folder, _objects(built), built


# --- the real validators -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_every_seed_builds_and_is_valid_against_kubernetes_schemas(seed, tmp_path, kustomize, kubeconform):
    folder = _render(_with_kubernetes(SEEDS[seed]), tmp_path)
    built = kustomize(folder)
    objects = _objects(built)
    checked = kubeconform(built)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    summary = re.search(r"Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)", checked.stdout)
    assert summary, checked.stdout
    assert tuple(map(int, summary.groups())) == (len(objects), 0, 0, 0)
    # every instance is there: a workload of its own name, a Service when it listens
    spec = yaml.safe_load(SEEDS[seed].read_text())
    workloads = _by(objects, "StatefulSet") | _by(objects, "Deployment")
    assert sorted(workloads) == sorted(spec["services"])
    # state decides the workload: a kind with a data volume, llama.cpp's model, a container's volumes
    stateful = {
        name for name, svc in spec["services"].items()
        if (svc or {}).get("kind", name) in ("postgres", "redis", "qdrant", "ollama", "open-webui", "llama-cpp") or (svc or {}).get("volumes")
    }  # fmt: skip
    assert set(_by(objects, "StatefulSet")) == stateful
    for sts in _by(objects, "StatefulSet").values():
        assert sts["spec"]["volumeClaimTemplates"]


def test_converter_schemas_refuse_unknown_fields_and_wrong_types(kubeconform):
    """Negative controls: the converted schemas are strict (an unknown field, a wrong type, a
    kind without a schema all fail) and accept the same object when it is right."""
    good = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "x", "image": "x:1", "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "1Gi"}}}]},
            },
        },
    }
    assert kubeconform(yaml.safe_dump(good)).returncode == 0
    unknown = json.loads(json.dumps(good))
    unknown["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    got = kubeconform(yaml.safe_dump(unknown))
    assert got.returncode == 1 and "additional properties 'imagePullPolicyy' not allowed" in got.stdout
    wrong = json.loads(json.dumps(good))
    wrong["spec"]["replicas"] = "one"
    got = kubeconform(yaml.safe_dump(wrong))
    assert got.returncode == 1 and "/spec/replicas" in got.stdout
    nested = json.loads(json.dumps(good))
    nested["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": "not a list"}}
    assert kubeconform(yaml.safe_dump(nested)).returncode == 1
    missing = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}}
    assert kubeconform(yaml.safe_dump(missing)).returncode == 1


def test_converter_layout_matches_kubeconform_names(schemas):
    names = {p.name for p in schemas.glob("*.json")}
    for name in ("statefulset-apps-v1.json", "deployment-apps-v1.json", "service-v1.json", "job-batch-v1.json",
                 "ingress-networking-v1.json", "configmap-v1.json"):  # fmt: skip
        assert name in names
    schema = json.loads((schemas / "service-v1.json").read_text())
    assert schema["additionalProperties"] is False
    assert all(ref.startswith("#/definitions/") for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(schema)))


# --- what the base contains ----------------------------------------------------------------------


def test_stateful_services_are_statefulsets_with_claims(reference):
    _, objects, _ = reference
    sets, deployments = _by(objects, "StatefulSet"), _by(objects, "Deployment")
    assert sorted(sets) == ["llama-cpp", "ollama", "open-webui", "postgres", "qdrant", "redis"]
    assert sorted(deployments) == ["agent"]
    for name, sts in sets.items():
        claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
        mounts = {m["name"] for m in _pod(sts)["containers"][0]["volumeMounts"]}
        assert claims and claims <= mounts, name
        assert sts["spec"]["serviceName"] == name
    pg = _pod(sets["postgres"])["containers"][0]
    env = {e["name"]: e["value"] for e in pg["env"]}
    mount = next(m["mountPath"] for m in pg["volumeMounts"] if m["name"] == "data")
    assert env["PGDATA"].startswith(mount + "/"), "initdb needs a folder below the volume's root (lost+found)"


def test_services_are_clusterip_and_named_after_instances(reference):
    _, objects, _ = reference
    services = _by(objects, "Service")
    internal = {n: s for n, s in services.items() if s["spec"]["type"] == "ClusterIP"}
    assert sorted(internal) == ["agent", "llama-cpp", "ollama", "open-webui", "postgres", "qdrant", "redis"]
    assert [p["port"] for p in internal["qdrant"]["spec"]["ports"]] == [6333, 6334]
    assert [p["port"] for p in internal["open-webui"]["spec"]["ports"]] == [8080]
    workloads = _by(objects, "StatefulSet") | _by(objects, "Deployment")
    for name, svc in internal.items():
        pod = workloads[name]["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), name
        named = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= named
    # no Service selects the model-pull Job's pods
    job_labels = _by(objects, "Job")["ollama-models"]["spec"]["template"]["metadata"]["labels"]
    assert not any(all(job_labels.get(k) == v for k, v in s["spec"]["selector"].items()) for s in services.values())


def test_exposure_only_where_the_spec_asks(reference, tmp_path, kustomize):
    _, objects, _ = reference
    lb = [s for s in _by(objects, "Service").values() if s["spec"]["type"] != "ClusterIP"]
    assert [(s["metadata"]["name"], s["spec"]["type"], [p["port"] for p in s["spec"]["ports"]]) for s in lb] == [
        ("qdrant-public", "LoadBalancer", [6333])
    ]
    (ingress,) = _by(objects, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "chat.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    target = _by(objects, "Service")[backend["name"]]
    assert backend["port"]["name"] in {p["name"] for p in target["spec"]["ports"]} and target["spec"]["type"] == "ClusterIP"
    # the same stack without kubernetes.expose: nothing leaves the cluster
    text = re.sub(r"(?m)^kubernetes:\n(  .*\n)+", "", SEEDS["k8s-ai-stack"].read_text())
    assert "\nkubernetes:" not in text
    plain = _objects(kustomize(_render(text, tmp_path)))
    assert not _by(plain, "Ingress")
    assert {s["spec"]["type"] for s in _by(plain, "Service").values()} == {"ClusterIP"}


def test_probes_come_from_the_health_description(reference):
    from stackgen.containers import plan
    from stackgen.spec import load_spec

    _, objects, _ = reference
    spec = load_spec(SEEDS["k8s-ai-stack"], "k8s-ai-stack.yaml")
    health = {c.name: c.health for c in plan(spec, peer=lambda n: n) if not c.oneshot}
    workloads = _by(objects, "StatefulSet") | _by(objects, "Deployment")
    for name, workload in workloads.items():
        ctr = _pod(workload)["containers"][0]
        h = health[name]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            got = ctr[probe]
            if h.probe is not None:  # plain HTTP: the kubelet asks itself (the image needs no client)
                assert h.probe[0] == "http" and got == {**got, "httpGet": {"path": h.probe[1], "port": h.probe[2]}}, (name, probe)
                assert "exec" not in got
            else:  # the very command compose's healthcheck runs
                assert got["exec"]["command"] == ["/bin/sh", "-c", h.command], (name, probe)
        assert ctr["readinessProbe"]["failureThreshold"] == h.retries
        startup = ctr["startupProbe"]
        assert startup["failureThreshold"] * startup["periodSeconds"] >= int(h.start_period.rstrip("s"))
    # which is which: the services with an HTTP health endpoint, and those checked by their own client
    asked = {n: (h.probe[:2] if h.probe else h.command) for n, h in health.items()}
    assert asked == {
        "agent": ("http", "/healthz"), "llama-cpp": ("http", "/health"), "ollama": ("http", "/api/version"),
        "qdrant": ("http", "/readyz"), "open-webui": ("http", "/health"),
        "postgres": "pg_isready -q -h 127.0.0.1 -p 5432 -U postgres",
        "redis": 'REDISCLI_AUTH="$(cat /run/secrets/redis-password)" redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG',
    }
    # llama.cpp loads its model for minutes: the startup probe waits at least its 300 s
    llama = _pod(workloads["llama-cpp"])["containers"][0]["startupProbe"]
    assert llama["failureThreshold"] * llama["periodSeconds"] >= 300


def test_gpu_services_get_the_gpu_resource_and_no_others(reference):
    _, objects, _ = reference
    workloads = _by(objects, "StatefulSet") | _by(objects, "Deployment")
    gpu = {n for n, w in workloads.items() if _pod(w)["containers"][0].get("resources", {}).get("limits", {}).get("nvidia.com/gpu") == 1}
    assert gpu == {"ollama", "llama-cpp"}


def test_recommended_labels_everywhere(reference):
    _, objects, _ = reference
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            continue
        metas = [obj["metadata"]] + ([obj["spec"]["template"]["metadata"]] if "template" in obj.get("spec", {}) else [])
        for meta in metas:
            labels = meta["labels"]
            assert {f"app.kubernetes.io/{k}" for k in RECOMMENDED} <= set(labels), obj["metadata"]["name"]
            assert labels["app.kubernetes.io/part-of"] == "k8s-ai-stack"
            assert labels["app.kubernetes.io/managed-by"] == "stackgen"
    for obj in objects:
        if obj["kind"] in ("StatefulSet", "Deployment", "Job"):
            assert _pod(obj)["automountServiceAccountToken"] is False


def test_connection_variables_in_cluster_dns_form(reference, expand):
    _, objects, _ = reference
    services = _by(objects, "Service")
    agent = _pod(_by(objects, "Deployment")["agent"])["containers"][0]
    env, _, _ = expand(agent)
    assert env["DATABASE_URL"] == "postgresql://aidb@postgres:5432/aidb"
    assert env["REDIS_URL"] == "redis://redis:6379"
    assert env["QDRANT_URL"] == "http://qdrant:6333"
    assert env["OLLAMA_BASE_URL"] == "http://ollama:11434"
    for name, value in env.items():
        if name.endswith("_URL"):  # each points at a Service of that name, on one of its ports
            host, port = re.match(r"\w+://(?:[^@/]*@)?([^:/]+):(\d+)", value).groups()
            assert int(port) in [p["port"] for p in services[host]["spec"]["ports"]], name
    webui = _pod(_by(objects, "StatefulSet")["open-webui"])["containers"][0]
    assert expand(webui)[0]["OLLAMA_BASE_URL"] == "http://ollama:11434"


def test_secrets_are_referenced_by_name_and_never_inlined(tmp_path, kustomize):
    """The spec's secret files hold a sentinel: no rendered or built byte carries it, no Secret
    object is rendered, and every mounted secret has its `kubectl create secret` line."""
    sentinel = "s3nt1nel-VALUE-never-rendered"
    text = SEEDS["k8s-ai-stack"].read_text()
    for path in sorted(set(re.findall(r"/run/secrets/[\w.-]+", text))):
        local = tmp_path / "secrets" / Path(path).name
        local.parent.mkdir(exist_ok=True)
        local.write_text(f"{sentinel}\n" if "password" in path else f"KEY={sentinel}\n")
        text = text.replace(path, str(local))
    folder = _render(text, tmp_path / "out")
    built = kustomize(folder)
    for f in folder.rglob("*"):
        assert sentinel not in f.read_text(), f
    assert sentinel not in built
    objects = _objects(built)
    assert not _by(objects, "Secret")
    mounted = set()
    for obj in objects:
        if obj["kind"] in ("StatefulSet", "Deployment", "Job"):
            for vol in _pod(obj).get("volumes", []):
                for source in vol.get("projected", {}).get("sources", []):
                    ref = source["secret"]
                    assert ref["items"] == [{"key": ref["name"], "path": ref["name"]}]
                    mounted.add(ref["name"])
    commands = [shlex.split(line.removeprefix("#")) for line in (folder / "kustomization.yaml").read_text().splitlines() if "kubectl create secret" in line]
    created = {}
    for argv in commands:
        assert argv[:4] == ["kubectl", "create", "secret", "generic"] and len(argv) == 6
        key, _, file = argv[5].removeprefix("--from-file=").partition("=")
        assert key == argv[4] and Path(file).read_text().count(sentinel) == 1
        created[argv[4]] = file
    assert set(created) == mounted == {"postgres-password", "redis-password", "qdrant-api-key", "open-webui-secret-key"}
    # the *_FILE variables point into the mounted folder
    agent = _pod(_by(objects, "Deployment")["agent"])["containers"][0]
    files = {e["value"] for e in agent["env"] if e["name"].endswith("_FILE")}
    assert files == {"/run/secrets/postgres-password", "/run/secrets/redis-password", "/run/secrets/qdrant-api-key"}


def test_postgres_init_sql_is_the_compose_one_as_a_generated_configmap(reference):
    folder, objects, _ = reference
    compose_sql = (folder.parent / "compose" / "postgres-init.sql").read_text()
    (cm,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert re.fullmatch(r"postgres-init-[a-z0-9]{10}", cm["metadata"]["name"]), "kustomize's content hash"
    assert cm["data"] == {"init.sql": compose_sql}
    pod = _pod(_by(objects, "StatefulSet")["postgres"])
    (vol,) = [v for v in pod["volumes"] if "configMap" in v]
    assert vol["configMap"]["name"] == cm["metadata"]["name"], "kustomize rewrote the reference"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == vol["name"])
    assert mount["mountPath"] + "/" + vol["configMap"]["items"][0]["path"] == "/docker-entrypoint-initdb.d/10-stackgen.sql"


def test_model_pull_job_waits_for_ollama_and_pulls_the_models(reference, expand):
    _, objects, _ = reference
    job = _by(objects, "Job")["ollama-models"]
    pod = _pod(job)
    assert pod["restartPolicy"] == "OnFailure"
    (wait,) = pod["initContainers"]
    env, command, _ = expand(wait)
    assert env["OLLAMA_HOST"] == "ollama:11434" and "until ollama list" in command[2] and "$OLLAMA_HOST" in command[2]
    env, command, args = expand(pod["containers"][0])
    assert args == ["llama3.2:3b", "qwen2.5:7b"]
    assert command[:2] == ["/bin/sh", "-c"] and '"$model"' in command[2]


def test_hostile_values_reach_the_process_unchanged(tmp_path, kustomize, expand):
    """$(VAR) references, $$ and lone $ in env values and command words arrive as the spec
    wrote them after the kubelet's own expansion (compiled from k8s.io/kubernetes)."""
    hostile = ["$(HOME)", "$$", "a$", "$(A)$(B", "x $(FIRST) y", "$$(FIRST)", "'\"\\ \t", "${FIRST}", "$"]
    words = [w for w in hostile if "\t" not in w]  # a command word is one line
    env = {f"V{i}": v for i, v in enumerate(hostile)}
    env["MULTI"] = "line one\n$(FIRST) line two"
    spec = {
        "version": 1, "name": "hostile", "targets": ["kubernetes"],
        "services": {
            "tool": {"kind": "container", "image": "docker.io/library/busybox:1.37", "command": ["echo", *words],
                     "env": {"FIRST": "one", **env}},
        },
    }  # fmt: skip
    built = _objects(kustomize(_render(yaml.safe_dump(spec), tmp_path)))
    ctr = _pod(_by(built, "Deployment")["tool"])["containers"][0]
    got_env, _, args = expand(ctr)
    assert args == ["echo", *words]
    assert {k: got_env[k] for k in env} == env
    # negative control: the raw value (unescaped) would have been expanded
    raw = dict(ctr, env=[{"name": "FIRST", "value": "one"}, {"name": "X", "value": "x $(FIRST) y"}])
    assert expand(raw)[0]["X"] == "x one y"


def _sh(script_words: list[str], cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(script_words, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_llama_model_fetch_init_container_with_sh_and_curl(tmp_path, kustomize, expand):
    """fetch-model, run by /bin/sh with curl (file:// URL): downloads, checks the hash, keeps
    nothing on a mismatch, and does nothing when the model is there."""
    import hashlib

    require_tool("curl", "the llama.cpp image's downloader")
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    source = served / "src.gguf"
    source.write_bytes(b"GGUF model bytes")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/src.gguf"
    models = tmp_path / "models dir $(x)"
    models.mkdir()

    def init_command(sha: str) -> list[str]:
        spec = {
            "version": 1, "name": "fetch", "targets": ["kubernetes"],
            "services": {"llama-cpp": {"model": "/models/m.gguf", "model_url": url, "model_sha256": sha}},
        }  # fmt: skip
        out = tmp_path / f"out-{sha[:4]}"
        pod = _pod(_by(_objects(kustomize(_render(yaml.safe_dump(spec), out))), "StatefulSet")["llama-cpp"])
        (init,) = pod["initContainers"]
        assert init["name"] == "fetch-model" and {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
        _, command, _ = expand(init)
        assert command[4] == "/models/m.gguf"
        return command[:4] + [str(models / "m.gguf")] + command[5:]

    wrong = init_command("0" * 64)
    assert _sh(wrong, tmp_path).returncode != 0
    assert not (models / "m.gguf").exists()
    right = init_command(hashlib.sha256(source.read_bytes()).hexdigest())
    done = _sh(right, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (models / "m.gguf").read_bytes() == source.read_bytes()
    server.shutdown()  # present: no download is tried
    assert _sh(right, tmp_path).returncode == 0


def test_llama_model_wait_init_container_says_how_to_copy(tmp_path, kustomize, expand):
    spec = {"version": 1, "name": "wait", "targets": ["kubernetes"], "services": {"llama-cpp": {"model": "/models/m.gguf"}}}
    pod = _pod(_by(_objects(kustomize(_render(yaml.safe_dump(spec), tmp_path / "out"))), "StatefulSet")["llama-cpp"])
    (init,) = pod["initContainers"]
    _, command, _ = expand(init)
    model = tmp_path / "m.gguf"
    command = command[:4] + [str(model)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
        model.write_bytes(b"GGUF")
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert f"kubectl cp MODEL.gguf {os.uname().nodename}:{model} -c wait-for-model" in out


def test_rendered_only_when_listed(tmp_path):
    from stackgen.spec.model import DEFAULT_TARGETS

    assert "kubernetes" not in DEFAULT_TARGETS  # a spec without targets: gets no k8s/
    files = render_text("version: 1\nname: plain\nservices:\n  redis: {}\n", tmp_path)
    assert not any(p.startswith("k8s/") for p in files)


def test_no_kubernetes_import_at_validation(tmp_path):
    """Validation never loads the target (or yaml through it)."""
    code = (
        "import sys; from stackgen.spec import load_spec; "
        f"load_spec({str(SEEDS['k8s-ai-stack'])!r}, 'x'); "
        "print('stackgen.targets.kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_timescale_image_gets_its_volume_group(tmp_path, kustomize):
    """Timescale's HA image runs as postgres (1000) from the start: the pod's fsGroup makes the
    fresh claim writable; it keeps its cluster below the mount already (no PGDATA)."""
    objects = _objects(kustomize(_render(_with_kubernetes(SEEDS["mcp-gateway"]), tmp_path)))
    pod = _pod(_by(objects, "StatefulSet")["postgres"])
    assert pod["securityContext"] == {"fsGroup": 1000}
    assert "PGDATA" not in {e["name"] for e in pod["containers"][0]["env"]}
    others = [_pod(w) for n, w in (_by(objects, "StatefulSet") | _by(objects, "Deployment")).items() if n != "postgres"]
    assert not any("securityContext" in p for p in others)


# --- property: hostile spec values through the YAML emitter and the kubelet's expansion ----------


def _k8s_strings(files: dict[str, str], expand) -> tuple[list[str], list]:
    """Every string of k8s/*.yaml as the process (or the API server) sees it: container command,
    args and env values after the kubelet's expansion, everything else as written; and the
    documents' shape."""
    strings, docs = [], []
    for path in sorted(files):
        if not path.endswith(".yaml") or path.endswith("kustomization.yaml"):
            continue
        for doc in yaml.safe_load_all(files[path]):
            docs.append(doc)
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            for ctr in pod.get("initContainers", []) + pod.get("containers", []):
                env, command, args = expand(ctr)
                strings += list(env.values()) + command + args
                rest = {k: v for k, v in ctr.items() if k not in ("env", "command", "args")}
                strings += _walk_strings(rest)
            if pod:
                doc = dict(doc, spec=dict(doc["spec"], template={**doc["spec"]["template"], "spec": {k: v for k, v in pod.items() if k not in ("containers", "initContainers")}}))
            strings += _walk_strings(doc)
    return strings, docs


def _walk_strings(node) -> list[str]:
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in _walk_strings(k) + _walk_strings(v)]
    if isinstance(node, list):
        return [x for v in node for x in _walk_strings(v)]
    return [node] if isinstance(node, str) else []


def _k8s_spec(values: dict) -> str:
    from test_container_roundtrip import spec

    text = spec(**values)
    assert "targets: [compose, quadlet]" in text
    return text.replace("targets: [compose, quadlet]", "targets: [kubernetes]")


def _render_k8s(text: str) -> dict[str, str] | None:
    from stackgen.errors import StackError
    from stackgen.render import render_tree
    from stackgen.spec.loader import parse
    from stackgen.spec.validate import validate

    try:
        loaded = validate(parse(text, "stack.yaml"))
    except StackError:
        return None
    return {f.path: f.text for f in render_tree(loaded, "kubernetes")}


def test_hostile_spec_values_reach_pods_intact(expand):
    """Model paths, model names and the Hugging Face mirror full of YAML, shell and $(VAR)
    syntax: the k8s/ documents keep their shape, and each value arrives whole after the
    kubelet's expansion (hypothesis; derandomized in CI)."""
    from hypothesis import HealthCheck, assume, example, given, settings

    from stackgen.spec.checks import CONTROL
    from test_container_roundtrip import BENIGN, check_content, hostile, shape

    benign_text = BENIGN.replace("targets: [compose, quadlet]", "targets: [kubernetes]")
    _, benign_docs = _k8s_strings(_render_k8s(benign_text), expand)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(values=hostile)
    @example(values={"model_dir": "/srv/a:b", "model_file": "qzpath#x.gguf", "model": "qzmodel:1", "hf": "https://qzurl.example.org/$$a$(HF_ENDPOINT)$", "description": "QZDESC"})
    def check(values):
        assume(all(CONTROL.search(v) is None for v in values.values()))
        files = _render_k8s(_k8s_spec(values))
        assume(files is not None)
        strings, docs = _k8s_strings(files, expand)
        assert shape(docs) == shape(benign_docs), "a spec value changed the structure of k8s/"
        check_content(strings, values)

    check()
