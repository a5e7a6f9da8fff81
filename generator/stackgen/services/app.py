"""`app`: the user's own program. Native targets (NixOS) run its `command:` as a hardened
systemd service; container targets run `image:`, or an image built from `build:`."""

from __future__ import annotations

from typing import Any

from ..spec import checks as ck
from ..spec.checks import INVALID, Collector
from .generic import Generic

NATIVE_TARGETS = ("nixos", "processes")  # run `command:`
# compose runs `image:`, or builds it from `build:` (tagged `image:` when both are given);
# Quadlet units run `image:` (a Quadlet .build unit cannot name the project's folder: it lies
# wherever the units are copied from), so build it first (podman build -t IMAGE .)
BUILD_TARGETS = ("compose",)
IMAGE_TARGETS = ("quadlet",)
# home-manager runs `command:` as a systemd user service (even when `image:` is given too), else
# the image as a Quadlet container
RELATIVE = ck.string(pattern=r"(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._/-]+", describe="a relative path inside the project (no '..')", max_len=1024)


def build(c: Collector, path: tuple, value: Any) -> Any:
    """{context: ., containerfile: Containerfile}: paths relative to the spec's folder."""
    data = ck.mapping(c, path, value, ("context", "containerfile"))
    if data is INVALID:
        return INVALID
    context = RELATIVE(c, path + ("context",), data.get("context", "."))
    containerfile = RELATIVE(c, path + ("containerfile",), data.get("containerfile", "Containerfile"))
    if INVALID in (context, containerfile):
        return INVALID
    return (context, containerfile)


class App(Generic):
    name = "app"
    gpu_capable = False
    component = "application"

    def local_image(self, stack: str, svc) -> str:
        """The tag an image built from `build:` gets (podman keeps it under localhost/)."""
        return f"localhost/{stack}-{svc.name}:latest"

    def default_image(self, svc) -> str | None:
        return svc.image

    def check(self, c: Collector, path: tuple, name: str, values: dict[str, Any], targets) -> None:
        super().check(c, path, name, values, targets)
        for target in targets:
            if target in NATIVE_TARGETS and not values.get("command"):
                c.error(path, f"services.{name} cannot run on {target}: an app needs 'command' there", f"add command: [program, args...] to services.{name}, or drop {target} from targets", at_key=True)
            program = (values.get("command") or [""])[0]
            if target in NATIVE_TARGETS + ("home-manager",) and "=" in program and not program.startswith("/"):
                # the unit runs it through env(1), which would read NAME=value as a variable
                c.error(path + ("command", 0), f"services.{name}.command[0] {program!r} is no program name ('=' in it)", "give the program's absolute path", at_key=False)
            if target in BUILD_TARGETS and not (values.get("image") or values.get("build")):
                c.error(path, f"services.{name} cannot run on {target}: an app needs 'image' or 'build' there", f"add image: registry/name:tag or build: {{context: .}} to services.{name}, or drop {target} from targets", at_key=True)
            if target in IMAGE_TARGETS and not values.get("image"):
                c.error(path, f"services.{name} cannot run on {target}: an app needs 'image' there", f"add image: (with build:, the tag compose builds; build it first for {target}: podman build -t NAME:TAG .), or drop {target} from targets", at_key=True)
            if target == "home-manager" and not (values.get("command") or values.get("image")):
                c.error(path, f"services.{name} cannot run on home-manager: an app needs 'command' or 'image' there", f"add command: [program, args...] to services.{name}, or drop home-manager from targets", at_key=True)

    def native_on_home(self, svc) -> bool:
        return bool(svc.options["command"])  # a systemd user service

    def container(self, spec, svc, peer, host_network: bool = False):
        from ..containers import base, connection

        env, secrets = connection(spec, svc, peer, host_network)
        ctr = base(
            svc, self, self.container_health(svc),
            env={**svc.options["env"], **env},
            secrets=secrets,
            command=(),
            depends_on=tuple(svc.options["uses"]),
            image=svc.image or self.local_image(spec.name, svc),
            build=svc.options["build"],
            host_network=host_network,
        )  # fmt: skip
        return ctr


    def process(self, spec, svc):
        """`command:` as quoted words, in the folder process-compose was started from (the
        project), with `env:` and the connection variables at the services' native addresses."""
        from ..procplan import Process, depends, words
        from .wiring import native

        env = {**svc.options["env"], **native(spec, [spec.services[n] for n in svc.options["uses"]])}
        return Process(
            name=svc.name,
            command=f"exec {words(*svc.options['command'])}",
            env=env,
            probe=self.process_probe(spec, svc),
            depends_on=depends(spec, svc.options["uses"]),
        )


App.fields = {**Generic.common_fields, "build": build}
App.defaults = {**Generic.common_defaults, "build": None}

KIND = App()
