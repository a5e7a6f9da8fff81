"""Open WebUI: a chat front end, pointed at the stack's first Ollama and llama.cpp servers."""

from __future__ import annotations

from ..spec import checks as ck
from .base import Kind

IMAGE = "ghcr.io/open-webui/open-webui:0.6.26"
# The image's own command (WORKDIR /app/backend, CMD ["bash", "start.sh"]), which the
# environment-file loader execs; an `image:` replacement must keep it with a key file.
COMMAND = ("bash", "start.sh")
# Settings its image (and nixpkgs' module) set; `environment` replaces the module's defaults.
TELEMETRY_OFF = {"SCARF_NO_ANALYTICS": "True", "DO_NOT_TRACK": "True", "ANONYMIZED_TELEMETRY": "False"}


class OpenWebui(Kind):
    name = "open-webui"
    port = 3000
    container_port = 8080
    fields = {"secret_key_file": ck.abspath}
    defaults = {"secret_key_file": None}
    secrets = {"secret_key_file": "/run/secrets/open-webui.env (an environment file: WEBUI_SECRET_KEY=...)"}
    data = "/app/backend/data"
    component = "frontend"
    storage = "2Gi"  # its SQLite database, uploads and the generated session key
    host_network_capable = True  # it can share the host's network to reach a native Ollama

    def default_image(self, svc) -> str:
        return IMAGE

    def container(self, spec, svc, peer, host_network: bool = False):
        from ..containers import base, mirror_env, secret, with_environment_file
        from .wiring import native_endpoint

        env = dict(TELEMETRY_OFF)  # the image sets these too; a replacement `image:` may not
        depends = []
        health = self.container_health(svc)
        if host_network:  # listen where the published port would have been
            env.update(HOST=_address(svc.host), PORT=str(svc.port))
            health = self.container_health(svc, native_endpoint(svc).host, svc.port)
        ollama = spec.first("ollama")
        if ollama is not None:
            env["OLLAMA_BASE_URL"] = ollama.local_url if host_network else f"http://{peer(ollama.name)}:11434"
            depends.append(ollama.name)
        llama = spec.first("llama-cpp")
        if llama is not None:
            env["OPENAI_API_BASE_URL"] = (llama.local_url if host_network else f"http://{peer(llama.name)}:8080") + "/v1"
            depends.append(llama.name)
        # secret_key_file is an environment file (WEBUI_SECRET_KEY=..., as on NixOS). Without
        # one the image generates a key; keep it in the data volume so sessions survive a
        # re-created container.
        env["WEBUI_SECRET_KEY_FILE"] = "/app/backend/data/.webui_secret_key"
        env.update(mirror_env(spec, hf=True, pypi=True))
        key = secret(svc, "secret_key_file")
        return base(
            svc, self,
            health,
            secrets=(key,) if key else (),
            command=with_environment_file(key, COMMAND),
            env=env,
            depends_on=tuple(depends),
            host_network=host_network,
        )  # fmt: skip

    def health(self, svc):
        from .health import Check

        # a first start downloads its embedding model (minutes, through the HF mirror)
        return Check(http="/health", image_client="curl", startup=300)

    def process(self, spec, svc):
        """open-webui serve, its data (and generated secret key) in the state folder, pointed at
        the stack's first Ollama and llama.cpp at their native addresses."""
        from ..containers import mirror_env
        from ..procplan import Process, native_url, state, with_environment_file, words

        env = dict(TELEMETRY_OFF)
        used = [s for s in (spec.first("ollama"), spec.first("llama-cpp")) if s is not None]
        if spec.first("ollama"):
            env["OLLAMA_BASE_URL"] = native_url(spec.first("ollama"))
        if spec.first("llama-cpp"):
            env["OPENAI_API_BASE_URL"] = native_url(spec.first("llama-cpp"), "/v1")
        env.update(mirror_env(spec, hf=True, pypi=True))
        command = (
            f"mkdir -p {state(svc)} && export DATA_DIR={state(svc)} WEBUI_SECRET_KEY_FILE={state(svc)}/.webui_secret_key && "
            + with_environment_file(svc.options["secret_key_file"], f"open-webui serve {words('--host', svc.host, '--port', svc.port)}")
        )
        return Process(
            name=svc.name, command=command, env=env, probe=self.process_probe(spec, svc),
            depends_on={s.name: "process_started" for s in used},  # it works without them; they load models
            packages=("pkgs.open-webui",),
        )  # fmt: skip


def _address(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host


KIND = OpenWebui()
