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

    def native_on_home(self, svc) -> bool:
        return True  # home-manager's own services.ollama

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"OLLAMA_BASE_URL": f"http://{at.authority}", "OLLAMA_HOST": at.authority}

    def container(self, spec, svc, peer):
        from ..containers import Health, base

        return base(svc, self, Health("ollama list >/dev/null", start_period="60s"), env={"OLLAMA_HOST": "0.0.0.0:11434"})

    def job_names(self, svc) -> list[str]:
        return [f"{svc.name}-models"] if svc.options["models"] else []

    def jobs(self, spec, svc, peer):
        """`models:` pulled by a one-shot container of the same image once Ollama is healthy: the
        rendered files need no stackgen at run time. `ollama pull` asks the server at OLLAMA_HOST."""
        from ..containers import Container

        if not svc.options["models"]:
            return []
        return [
            Container(
                kind=self.name,
                name=f"{svc.name}-models",
                image=svc.image or self.default_image(svc),
                health=None,
                ports=(),
                env={"OLLAMA_HOST": f"{peer(svc.name)}:11434"},
                entrypoint=("/bin/sh", "-c", 'for model; do ollama pull "$model" || exit 1; done', "pull"),
                command=tuple(svc.options["models"]),
                depends_on=(svc.name,),
                profiles=svc.profiles,
                oneshot=True,
            )
        ]


KIND = Ollama()
