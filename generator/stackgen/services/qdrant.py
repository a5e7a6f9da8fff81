"""Qdrant: vector database (HTTP and gRPC ports). NixOS: nixpkgs' `services.qdrant.settings`."""

from __future__ import annotations

import re
from typing import Any

from ..errors import shown
from ..spec import checks as ck
from ..spec.checks import INVALID, Collector, dotted
from .base import Endpoint, Kind

IMAGE = "docker.io/qdrant/qdrant:v1.15.3"
# The image's own command, which the environment-file loader execs (the image has no
# ENTRYPOINT; its Dockerfile has WORKDIR /qdrant and CMD ["./entrypoint.sh"]). An `image:`
# replacement must keep it when it is given a key file.
COMMAND = ("./entrypoint.sh",)


# A key of Qdrant's configuration: lowercase words joined by single '_'. The containers pass
# settings as QDRANT__SECTION__KEY variables, which Qdrant splits at "__" and lower-cases, so a
# key with "__" or upper case letters could not reach it intact.
SETTING_KEY = r"[a-z][a-z0-9]*(_[a-z0-9]+)*"  # compiled at first use: most specs set none
MAX_DEPTH = 6
# Leaves stackgen sets from the service's own keys (or that hold a secret), with what to set.
OWNED = {
    ("service", "host"): "set services.{name}.host",
    ("service", "http_port"): "set services.{name}.port",
    ("service", "grpc_port"): "set services.{name}.grpc_port",
    ("storage", "storage_path"): "the storage is the service's data volume (NixOS: /var/lib/qdrant)",
}
# Leaves that hold a secret: never in the spec (it is copied into compose files and the Nix store).
SECRETS = {
    ("service", "api_key"): "give services.{name}.api_key_file (an environment file with QDRANT__SERVICE__API_KEY=...)",
    ("service", "read_only_api_key"): "add QDRANT__SERVICE__READ_ONLY_API_KEY=... to the services.{name}.api_key_file environment file",
}
SECTIONS = {path[0] for path in OWNED}  # mappings in stackgen's own settings


def _settings(c: Collector, path: tuple, value: Any) -> Any:
    """`settings:` Qdrant configuration, nested as in its config.yaml, leaves text, numbers or
    booleans; merged over stackgen's own (telemetry_disabled: true)."""
    leaves: dict[tuple, Any] = {}
    ok = value is None or _walk(c, path, (), value, leaves)  # None: `settings:` with nothing under it
    return leaves if ok else INVALID


def _walk(c: Collector, path: tuple, keys: tuple, value: Any, leaves: dict) -> bool:
    here = path + keys
    if not isinstance(value, dict):
        c.error(here, f"{dotted(here)} must be a mapping, not {ck.kind_of(value)}")
        return False
    if len(keys) >= MAX_DEPTH:
        c.error(here, f"{dotted(here)} is nested deeper than Qdrant's configuration ({MAX_DEPTH} levels)")
        return False
    ok = True
    for key, val in value.items():
        kpath, name = here + (key,), path[-2]
        if not isinstance(key, str) or not re.fullmatch(SETTING_KEY, key):
            c.error(kpath, f"{dotted(here)} key {shown(key)!r} is not a Qdrant setting name", "use lowercase words joined by '_' (such as max_request_size_mb)", at_key=True)
            ok = False
        elif keys + (key,) in OWNED:
            c.error(kpath, f"{dotted(kpath)} is set by stackgen", OWNED[keys + (key,)].format(name=name), at_key=True)
            ok = False
        elif keys + (key,) in SECRETS:
            c.error(kpath, f"{dotted(kpath)} is a secret; secrets are never written into the spec", SECRETS[keys + (key,)].format(name=name), at_key=True)
            ok = False
        elif isinstance(val, dict):
            ok = _walk(c, path, keys + (key,), val, leaves) and ok
        elif not keys and key in SECTIONS:
            c.error(kpath, f"{dotted(kpath)} must be a mapping, not {ck.kind_of(val)}")
            ok = False
        elif (got := ck.setting_value(c, kpath, val, "text, a number, true/false or a mapping")) is INVALID:
            ok = False
        else:
            leaves[keys + (key,)] = got
    return ok




def settings(svc) -> dict[tuple, Any]:
    """Every setting stackgen gives Qdrant beyond its defaults, as (path, value) leaves: the
    telemetry opt-out, then the spec's (which may turn it back on). The service's address,
    ports and storage are set by each target from the service's own keys."""
    return {("telemetry_disabled",): True, **svc.options["settings"]}


def env_name(path: tuple) -> str:
    """Qdrant's environment variable for a setting: QDRANT__SECTION__KEY."""
    return "__".join(("QDRANT", *(part.upper() for part in path)))


def env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Qdrant(Kind):
    name = "qdrant"
    port = 6333
    container_port = 6333
    fields = {"grpc_port": ck.port, "settings": _settings, "api_key_file": ck.abspath}
    defaults = {"grpc_port": 6334, "settings": {}, "api_key_file": None}
    secrets = {"api_key_file": "/run/secrets/qdrant.env (an environment file: QDRANT__SERVICE__API_KEY=...)"}
    secret_variables = {"api_key_file": "API_KEY_FILE"}
    container_auth = "api_key_file"
    conventional = ("QDRANT_URL",)
    data = "/qdrant/storage"
    component = "vector-database"
    storage = "10Gi"

    def default_image(self, svc) -> str:
        return IMAGE

    def host_ports(self, svc) -> list[tuple[str, int]]:
        return [("port", svc.port), ("grpc_port", svc.options["grpc_port"])]

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"QDRANT_URL": self.url(svc, at)}

    def container(self, spec, svc, peer):
        from ..containers import base, secret, with_environment_file

        # api_key_file is an environment file (QDRANT__SERVICE__API_KEY=..., as on NixOS)
        key = secret(svc, "api_key_file")
        return base(
            svc, self,
            self.container_health(svc),
            extra_ports=((svc.host, svc.options["grpc_port"], 6334),),
            secrets=(key,) if key else (),
            env={env_name(path): env_value(value) for path, value in settings(svc).items()},
            command=with_environment_file(key, COMMAND),
        )  # fmt: skip

    def health(self, svc):
        from .health import Check

        # /readyz is open without the API key; the image has neither curl nor wget: bash's /dev/tcp asks
        return Check(http="/readyz", image_client="bash")

    def process(self, spec, svc):
        """qdrant configured by QDRANT__* variables (as the containers), storage and snapshots in
        the state folder (also its working folder); the key file through the env-file loader."""
        from ..procplan import Process, state, with_environment_file

        env = {env_name(("service", "host")): svc.host, env_name(("service", "http_port")): str(svc.port), env_name(("service", "grpc_port")): str(svc.options["grpc_port"])}
        env.update({env_name(path): env_value(value) for path, value in settings(svc).items()})
        command = (
            f"mkdir -p {state(svc)} && cd {state(svc)} && export QDRANT__STORAGE__STORAGE_PATH=\"$PWD/storage\""
            f" QDRANT__STORAGE__SNAPSHOTS_PATH=\"$PWD/snapshots\" && {with_environment_file(svc.options['api_key_file'], 'qdrant')}"
        )
        return Process(name=svc.name, command=command, env=env, probe=self.process_probe(spec, svc), packages=("pkgs.qdrant",))


def nixos_settings(svc) -> list[tuple[tuple, Any]]:
    """services.qdrant.settings leaves for the NixOS module: the address and ports, then
    `settings`. nixpkgs sets its own leaves with mkDefault; the template sets these with
    mkOverride 900 so both merge and a plain definition of the user's still wins."""
    own = {("service", "host"): svc.host, ("service", "http_port"): svc.port, ("service", "grpc_port"): svc.options["grpc_port"]}
    return list({**own, **settings(svc)}.items())


KIND = Qdrant()
