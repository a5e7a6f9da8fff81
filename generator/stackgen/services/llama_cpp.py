"""llama.cpp's llama-server: one GGUF model behind an OpenAI-compatible API (GPU-capable).
Any number of instances; on NixOS the first one of a spec uses nixpkgs' (single-instance)
module, the others get systemd units of their own."""

from __future__ import annotations

from ..spec import checks as ck
from ..records import replace
from .base import Endpoint, Kind

BUILD = "b7018"  # llama.cpp release build; the CPU and CUDA server images share it
IMAGE = f"ghcr.io/ggml-org/llama.cpp:server-{BUILD}"
CUDA_IMAGE = f"ghcr.io/ggml-org/llama.cpp:server-cuda-{BUILD}"


class LlamaCpp(Kind):
    name = "llama-cpp"
    port = 8080
    container_port = 8080
    gpu_capable = True
    fields = {
        "model": ck.abspath,
        "model_url": ck.url,
        "model_sha256": ck.SHA256,
        "context": ck.integer(256, 1_048_576),
        "gpu_layers": ck.integer(0, 1000),
    }
    defaults = {"model_url": None, "model_sha256": None, "context": 4096, "gpu_layers": None}
    required = ("model",)
    conventional = ("OPENAI_BASE_URL",)
    component = "model-server"
    storage = "20Gi"  # the model file

    def required_hint(self, key: str) -> str | None:
        if key == "model":
            return "give the GGUF file's path, e.g. model: /var/lib/llama-cpp/models/qwen2.5-coder-7b-q4_k_m.gguf"
        return None

    def default_image(self, svc) -> str:
        return CUDA_IMAGE if svc.gpu else IMAGE

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"OPENAI_BASE_URL": f"http://{at.authority}/v1"}

    def gpu_layers(self, svc) -> int | None:
        """Layers to offload: the spec's number, else all of them on a GPU."""
        layers = svc.options["gpu_layers"]
        return layers if layers is not None else (999 if svc.gpu else None)

    def flags(self, svc) -> list[tuple[str, int]]:
        """llama-server flags beyond model, host and port (long names, as nixpkgs' settings)."""
        flags: list[tuple[str, int]] = [("ctx-size", svc.options["context"])]
        layers = self.gpu_layers(svc)
        if layers is not None:
            flags.append(("n-gpu-layers", layers))
        return flags

    def container(self, spec, svc, peer):
        from ..containers import base, mirror_env

        model = svc.options["model"]
        args = ["--model", model, "--host", "0.0.0.0", "--port", "8080", "--ctx-size", str(svc.options["context"])]
        layers = svc.options["gpu_layers"]
        if svc.gpu:
            args += ["--n-gpu-layers", str(999 if layers is None else layers)]
        model_dir = model.rsplit("/", 1)[0] or "/"
        return base(
            svc, self,
            self.container_health(svc),
            binds=((model_dir, model_dir),),
            env=mirror_env(spec, hf=True),
            command=tuple(args),
        )  # fmt: skip

    def health(self, svc):
        from .health import Check

        return Check(http="/health", image_client="curl", startup=300)  # 503 while the model loads

    def process(self, spec, svc):
        from ..containers import mirror_env
        from ..procplan import Process, words

        args = ["--model", svc.options["model"], "--host", svc.host, "--port", svc.port]
        args += [word for flag, value in self.flags(svc) for word in (f"--{flag}", value)]
        return Process(
            name=svc.name,
            command=f"exec llama-server {words(*args)}",
            env=mirror_env(spec, hf=True),
            probe=self.process_probe(spec, svc),
            # the NixOS target's package (nixos.nix.j2): llama-cpp, with CUDA on a GPU
            packages=(f"(pkgs.llama-cpp.override {{ cudaSupport = {'true' if svc.gpu else 'false'}; }})",),
        )

    def kubernetes(self, spec, ctr):
        """No host path in a cluster: the model's folder is a volume of its own (the pod is a
        StatefulSet, so the file survives restarts), filled before the server starts by an
        init container: from `model_url` (checked against `model_sha256`) when given, else it
        waits for the file to be copied in (`kubectl cp`), saying how every minute."""
        svc = spec.services[ctr.name]
        model = svc.options["model"]
        model_dir = model.rsplit("/", 1)[0] or "/"
        if svc.options["model_url"]:
            step = ("fetch-model", ("/bin/sh", "-c", FETCH_MODEL, "fetch-model", model, svc.options["model_url"], svc.options["model_sha256"] or ""))
        else:
            step = ("wait-for-model", ("/bin/sh", "-c", WAIT_FOR_MODEL, "wait-for-model", model))
        return replace(ctr, binds=(), volumes=((f"{ctr.name}-models", model_dir),), init=(step,))


# Values arrive as positional arguments ($1 ...), never inside the program text.
FETCH_MODEL = (
    'set -eu; [ -s "$1" ] && exit 0; '
    'curl --globoff -fL --retry 5 -o "$1.part" "$2"; '
    'if [ -n "$3" ]; then printf \'%s  %s\\n\' "$3" "$1.part" | sha256sum -c -; fi; '
    'mv "$1.part" "$1"'
)
WAIT_FOR_MODEL = (
    'n=0; until [ -s "$1" ]; do '
    '[ $((n % 12)) -eq 0 ] && echo "waiting for $1: kubectl cp MODEL.gguf $(hostname):$1 -c wait-for-model"; '
    'n=$((n+1)); sleep 5; done'
)

KIND = LlamaCpp()
