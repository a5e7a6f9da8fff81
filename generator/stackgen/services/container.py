"""`container`: any image the user names (pinned to a tag or digest), run on the container
targets as the built-in kinds are, and on NixOS through virtualisation.oci-containers."""

from __future__ import annotations

from ..spec import checks as ck
from .generic import Generic, health_command, volumes


class Container(Generic):
    name = "container"
    required = ("image",)

    def required_hint(self, key: str) -> str | None:
        return "name the image with a tag or digest, e.g. image: docker.io/redis/redisinsight:2.58"

    def default_image(self, svc) -> str:
        return svc.image

    def container(self, spec, svc, peer, host_network: bool = False):
        from ..containers import base, connection

        env, secrets = connection(spec, svc, peer, host_network)
        return base(
            svc, self, container_health(svc, self),
            volumes=tuple((f"{svc.name}-{vol}", path) for vol, path in svc.options["volumes"]),
            env={**svc.options["env"], **env},
            secrets=secrets,
            command=tuple(svc.options["command"] or ()),
            depends_on=tuple(svc.options["uses"]),
            host_network=host_network,
        )  # fmt: skip


def container_health(svc, kind):
    from ..containers import Health

    probe = svc.options["health"]
    if probe is None:
        return None
    return Health(health_command(probe, kind.inner_port(svc)))


Container.fields = {**Generic.common_fields, "volumes": volumes}
Container.defaults = {**Generic.common_defaults, "volumes": ()}

KIND = Container()
