"""`container`: any image the user names (pinned to a tag or digest), run on the container
targets as the built-in kinds are, and on NixOS through virtualisation.oci-containers."""

from __future__ import annotations

from .generic import Generic, volumes


class Container(Generic):
    name = "container"
    required = ("image",)

    def required_hint(self, key: str) -> str | None:
        return "name the image with a tag or digest, e.g. image: docker.io/redis/redisinsight:2.58"

    def default_image(self, svc) -> str:
        return svc.image

    native = False

    def check(self, c, path, name, values, targets) -> None:
        super().check(c, path, name, values, targets)
        if "processes" in targets:
            # processes runs native programs only; a container engine would be a second supervisor
            c.error(path, f"services.{name} cannot run on processes: a container service needs a container engine", "run it on compose or quadlet, or drop processes from targets", at_key=True)

    def container(self, spec, svc, peer, host_network: bool = False):
        from ..containers import base, connection

        env, secrets = connection(spec, svc, peer, host_network)
        return base(
            svc, self, self.container_health(svc),
            volumes=tuple((f"{svc.name}-{vol}", path) for vol, path in svc.options["volumes"]),
            env={**svc.options["env"], **env},
            secrets=secrets,
            command=tuple(svc.options["command"] or ()),
            depends_on=tuple(svc.options["uses"]),
            host_network=host_network,
        )  # fmt: skip


Container.fields = {**Generic.common_fields, "volumes": volumes}
Container.defaults = {**Generic.common_defaults, "volumes": ()}

KIND = Container()
