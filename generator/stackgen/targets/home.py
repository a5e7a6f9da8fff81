"""The `home-manager` target: nix/home.nix, a home-manager module for a non-NixOS workstation.

Ollama runs natively (home-manager's `services.ollama`); the other services run as rootless
Quadlet containers through home-manager's `services.podman.containers`.
"""

from __future__ import annotations

from .. import mirrordata
from ..containers import default_image, postgres_data_dir
from ..escape import systemd_words
from ..spec.model import Service, Spec
from ..render import Templates
from .nixos import copy_modules, gpu_layers, local_url, postgres, services_by_kind

CDI_GPU = "nvidia.com/gpu=all"
# Where each image keeps its state (the volume mount point).
DATA_DIRS = {
    "qdrant": "/qdrant/storage",
    "open-webui": "/app/backend/data",
    "redis": "/data",
}


def render(spec: Spec, tpl: Templates) -> dict[str, str]:
    ollama = spec.services.get("ollama")
    imports = ["ollama-models.nix"] if ollama is not None and ollama.models else []
    containers = [container(spec, svc) for kind, svc in spec.services.items() if kind != "ollama"]
    files = {
        "nix/home.nix": tpl(
            "home/home.nix.j2",
            imports=imports,
            pypi=mirrordata.pypi_index(spec),
            hf=mirrordata.hf_endpoint(spec),
            svc=services_by_kind(spec),
            containers=containers,
            network=spec.name,
            volumes=[c["volume"] for c in containers if c["volume"]],
            postgres_create=postgres(spec.services["postgres"])["create"] if spec.has("postgres") else [],
        )
    }
    files.update(copy_modules("home", imports))
    return files


def published(svc: Service, port: int, container_port: int) -> str:
    host = "127.0.0.1" if svc.host == "localhost" else svc.host
    return f"{'[' + host + ']' if ':' in host else host}:{port}:{container_port}"


def container(spec: Spec, svc: Service) -> dict:
    """One `services.podman.containers.<name>` entry, as plain data for the template."""
    image = svc.image or default_image(svc)
    name = f"{spec.name}-{svc.kind}"
    c = {
        "kind": svc.kind,
        "name": name,
        "image": image,
        "ports": [published(svc, svc.port, svc.port)],
        "volumes": [],
        "volume": None,
        "environment": {},
        "exec": None,
        "devices": [CDI_GPU] if svc.gpu else [],
        "host_network": False,
    }
    if svc.kind == "llama-cpp":
        model_dir, _, model_file = svc.model.rpartition("/")
        c["volumes"].append(f"{model_dir or '/'}:/models:ro")
        args = ["--host", "0.0.0.0", "--port", svc.port, "--model", f"/models/{model_file}", "--ctx-size", svc.context]
        layers = gpu_layers(svc)
        if layers is not None:
            args += ["--n-gpu-layers", layers]
        c["exec"] = systemd_words(args)
    elif svc.kind == "postgres":
        c["volume"] = name
        c["volumes"].append(f"{name}.volume:{postgres_data_dir(svc.version, image)}")
        c["ports"] = [published(svc, svc.port, 5432)]
    elif svc.kind == "redis":
        c["volume"] = name
        c["volumes"].append(f"{name}.volume:{DATA_DIRS['redis']}")
        c["ports"] = [published(svc, svc.port, 6379)]
        args = ["--appendonly", "yes"] + (["--maxmemory", svc.maxmemory] if svc.maxmemory else [])
        c["exec"] = systemd_words(args)
    elif svc.kind == "qdrant":
        c["volume"] = name
        c["volumes"].append(f"{name}.volume:{DATA_DIRS['qdrant']}")
        c["ports"] = [published(svc, svc.port, 6333), published(svc, svc.grpc_port, 6334)]
        c["environment"]["QDRANT__TELEMETRY_DISABLED"] = "true"
    elif svc.kind == "open-webui":
        c["volume"] = name
        c["volumes"].append(f"{name}.volume:{DATA_DIRS['open-webui']}")
        env = {"SCARF_NO_ANALYTICS": "True", "DO_NOT_TRACK": "True", "ANONYMIZED_TELEMETRY": "False"}
        if spec.has("ollama"):
            # Ollama runs on the host's loopback, which only the host network reaches.
            c["host_network"] = True
            c["ports"] = []
            env.update(HOST="127.0.0.1" if svc.host == "localhost" else svc.host, PORT=str(svc.port))
            env["OLLAMA_BASE_URL"] = local_url(spec.services["ollama"])
        else:
            c["ports"] = [published(svc, svc.port, 8080)]
        hf = mirrordata.hf_endpoint(spec)
        if hf:
            env["HF_ENDPOINT"] = hf
        c["environment"] = env
    return c
