"""Qdrant: vector database (HTTP and gRPC ports). NixOS: nixpkgs' `services.qdrant.settings`."""

from __future__ import annotations

from ..spec import checks as ck
from .base import Endpoint, Kind

IMAGE = "docker.io/qdrant/qdrant:v1.15.3"
# The image's own command, which the environment-file loader execs (the image has no
# ENTRYPOINT; its Dockerfile has WORKDIR /qdrant and CMD ["./entrypoint.sh"]). An `image:`
# replacement must keep it when it is given a key file.
COMMAND = ("./entrypoint.sh",)


class Qdrant(Kind):
    name = "qdrant"
    port = 6333
    container_port = 6333
    fields = {"grpc_port": ck.port, "api_key_file": ck.abspath}
    defaults = {"grpc_port": 6334, "api_key_file": None}
    secrets = {"api_key_file": "/run/secrets/qdrant.env (an environment file: QDRANT__SERVICE__API_KEY=...)"}
    secret_variables = {"api_key_file": "API_KEY_FILE"}
    container_auth = "api_key_file"
    conventional = ("QDRANT_URL",)
    data = "/qdrant/storage"

    def default_image(self, svc) -> str:
        return IMAGE

    def host_ports(self, svc) -> list[tuple[str, int]]:
        return [("port", svc.port), ("grpc_port", svc.options["grpc_port"])]

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"QDRANT_URL": self.url(svc, at)}

    def container(self, spec, svc, peer):
        from ..containers import Health, base, secret, with_environment_file

        # The image has neither curl nor wget; bash's /dev/tcp asks /readyz (open without the API key).
        readyz = "bash -c 'exec 3<>/dev/tcp/127.0.0.1/6333 && printf \"GET /readyz HTTP/1.0\\r\\n\\r\\n\" >&3 && grep -q \" 200 \" <&3'"
        # api_key_file is an environment file (QDRANT__SERVICE__API_KEY=..., as on NixOS)
        key = secret(svc, "api_key_file")
        return base(
            svc, self,
            Health(readyz),
            extra_ports=((svc.host, svc.options["grpc_port"], 6334),),
            secrets=(key,) if key else (),
            env={"QDRANT__TELEMETRY_DISABLED": "true"},
            command=with_environment_file(key, COMMAND),
        )  # fmt: skip


KIND = Qdrant()
