"""Ollama: model server (GPU-capable). NixOS and home-manager run it natively; the container
targets run the pinned image and pull `models:` with a one-shot job once it is healthy."""

from __future__ import annotations

from ..spec import checks as ck
from .base import Endpoint, Kind

IMAGE = "docker.io/ollama/ollama:0.12.10"


class Ollama(Kind):
    name = "ollama"
    port = 11434
    container_port = 11434
    gpu_capable = True
    fields = {"models": ck.listof(ck.OLLAMA_MODEL, max_len=100)}
    defaults = {"models": ()}
    conventional = ("OLLAMA_BASE_URL", "OLLAMA_HOST")
    data = "/root/.ollama"

    def default_image(self, svc) -> str:
        return IMAGE

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"OLLAMA_BASE_URL": f"http://{at.authority}", "OLLAMA_HOST": at.authority}

    def container(self, spec, svc, peer):
        from ..containers import Health, base

        return base(svc, self, Health("ollama list >/dev/null", start_period="60s"), env={"OLLAMA_HOST": "0.0.0.0:11434"})


KIND = Ollama()
