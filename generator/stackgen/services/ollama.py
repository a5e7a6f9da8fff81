"""Ollama: model server (GPU-capable). NixOS and home-manager run it natively; the container
targets run the pinned image and pull `models:` with a one-shot job once it is healthy."""

from __future__ import annotations

from ..spec import checks as ck
from ..records import replace
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
    component = "model-server"
    storage = "50Gi"  # the pulled models

    def default_image(self, svc) -> str:
        return IMAGE

    def native_on_home(self, svc) -> bool:
        return True  # home-manager's own services.ollama

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"OLLAMA_BASE_URL": f"http://{at.authority}", "OLLAMA_HOST": at.authority}

    def container(self, spec, svc, peer):
        from ..containers import base

        return base(svc, self, self.container_health(svc), env={"OLLAMA_HOST": "0.0.0.0:11434"})

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

    def kubernetes(self, spec, ctr):
        """The pull job waits for the server first: a Job starts at once, and `ollama pull`
        against a server still starting would fail and burn the Job's retries."""
        if not ctr.oneshot:
            return ctr
        wait = 'until ollama list >/dev/null 2>&1; do echo "waiting for $OLLAMA_HOST"; sleep 5; done'
        return replace(ctr, init=(("wait-for-ollama", ("/bin/sh", "-c", wait)),))

    def process_packages(self, spec, svc) -> tuple[str, ...]:
        """The NixOS target's package choice (nixos.nix.j2): CUDA with a GPU."""
        return ("pkgs.ollama-cuda",) if svc.gpu else ("pkgs.ollama-cpu",) if spec.gpu.nvidia else ("pkgs.ollama",)

    def health(self, svc):
        from .health import Check

        # The image has no HTTP client: its own CLI asks the API (GET /api/tags)
        return Check(http="/api/version", image_client="ollama list >/dev/null", startup=60)

    def process(self, spec, svc):
        from ..procplan import Process, state

        return Process(
            name=svc.name,
            command=f"export OLLAMA_MODELS={state(svc)}/models && exec ollama serve",
            env={"OLLAMA_HOST": f"{svc.host_before_port}:{svc.port}"},
            probe=self.process_probe(spec, svc),
            packages=self.process_packages(spec, svc),
        )

    def process_jobs(self, spec, svc):
        """`models:` pulled by a one-shot process once Ollama is healthy (`ollama pull` asks the
        server at OLLAMA_HOST), as the containers' pull job does."""
        from ..procplan import Process, words
        from .wiring import native_endpoint

        if not svc.options["models"]:
            return []
        return [
            Process(
                name=f"{svc.name}-models",
                command=f'for model in {words(*svc.options["models"])}; do ollama pull "$model" || exit 1; done',
                env={"OLLAMA_HOST": native_endpoint(svc).authority},
                depends_on={svc.name: "process_healthy"},
                oneshot=True,
            )
        ]


KIND = Ollama()
