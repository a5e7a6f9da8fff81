"""Redis. NixOS: a named server of nixpkgs' `services.redis.servers`; containers: the pinned image."""

from __future__ import annotations

from ..escape import sh_quote
from ..spec import checks as ck
from .base import Endpoint, Kind

IMAGE = "docker.io/library/redis:7.4.6"
# Redis' eviction policies (maxmemory-policy in redis.conf; Redis 7.4).
POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)
# The append-only file is on by default on every target. Redis' own default (and nixpkgs'
# appendOnly) is off, which keeps only the periodic RDB snapshots: a restart loses up to
# minutes of writes, a surprise for the job queues and session stores Redis serves here. With
# AOF (fsync every second) it loses at most a second. The containers ran with AOF on before
# this option existed: turning it off there would make Redis start from the (older or absent)
# RDB snapshot and ignore the data in the AOF. Redis 7 turns it on safely where only a
# snapshot exists (it loads the snapshot and writes the AOF from it), so NixOS can follow.
APPENDONLY_DEFAULT = True


class Redis(Kind):
    name = "redis"
    port = 6379
    container_port = 6379
    fields = {
        "maxmemory": ck.MEMSIZE,
        "maxmemory_policy": ck.enum(POLICIES),
        "appendonly": ck.boolean,
        "password_file": ck.abspath,
    }
    defaults = {"maxmemory": None, "maxmemory_policy": None, "appendonly": APPENDONLY_DEFAULT, "password_file": None}
    secrets = {"password_file": "/run/secrets/redis-password (the bare password)"}
    secret_variables = {"password_file": "PASSWORD_FILE"}
    container_auth = "password_file"
    conventional = ("REDIS_URL",)
    data = "/data"
    component = "cache"

    def default_image(self, svc) -> str:
        return IMAGE

    def url(self, svc, at: Endpoint) -> str:
        return f"redis://{at.authority}"

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"REDIS_URL": self.url(svc, at)}

    def container(self, spec, svc, peer):
        from ..containers import base, secret, secret_path

        pw = secret(svc, "password_file")
        # Other containers reach it over the stack's network, not loopback; what the host sees is
        # decided by the published port (127.0.0.1 unless the spec exposes it, and then with a password).
        server = ["redis-server", *server_args(svc), "--protected-mode", "no"]
        if pw:
            path = secret_path(pw[0])
            # redis-server has no password-file option, and a password given as an argument shows
            # in `ps` to every user of the host. A shell writes it into a private config file
            # (printf is a builtin: no process sees it), escaped for redis' quoted strings, then
            # hands over to the image's entrypoint, which drops root to the redis user.
            conf = "/tmp/stackgen-redis.conf"
            command: tuple[str, ...] = (
                "sh",
                "-c",
                f"umask 077 && printf 'requirepass \"%s\"\\n' \"$(sed 's/[\\\\\"]/\\\\&/g' {path})\" >{conf}"
                f" && {{ chown redis {conf} 2>/dev/null || true; }}"
                f" && exec docker-entrypoint.sh {server[0]} {conf} " + " ".join(server[1:]),
            )
        else:
            command = tuple(server)
        return base(svc, self, self.container_health(svc), secrets=(pw,) if pw else (), command=command)

    def health(self, svc):
        from .health import Check

        def ping(place) -> str:
            command = f"redis-cli -h {sh_quote(place.at.host)} -p {place.at.port} ping | grep -q PONG"
            if svc.options["password_file"]:  # in the environment of redis-cli only, never on its argv
                command = f'REDISCLI_AUTH="$(cat {place.secret("password_file")})" {command}'
            return command

        return Check(command=ping)

    def process(self, spec, svc):
        """redis-server with its data (RDB, AOF) in the state folder. A password goes into a
        private config file (printf is a bash builtin: no process shows it), never argv."""
        from ..procplan import Process, state, words

        server = words("--bind", svc.host, "--port", svc.port, *server_args(svc))
        command = f"umask 077 && mkdir -p {state(svc)} && cd {state(svc)} && "
        pw = svc.options["password_file"]
        if pw:
            command += (
                f"printf 'requirepass \"%s\"\\n' \"$(sed 's/[\\\\\"]/\\\\&/g' {words(pw)})\" >secret.conf"
                f" && exec redis-server ./secret.conf --dir . {server}"
            )
        else:
            command += f"exec redis-server --dir . {server}"
        return Process(name=svc.name, command=command, probe=self.process_probe(spec, svc), packages=("pkgs.redis",))


def server_args(svc) -> list[str]:
    """redis-server arguments for the spec's settings (the containers' command; NixOS sets the
    same through the module's options): each a word of its own, no shell in between."""
    args = ["--appendonly", "yes" if svc.options["appendonly"] else "no"]
    if svc.options["maxmemory"]:
        args += ["--maxmemory", svc.options["maxmemory"]]
    if svc.options["maxmemory_policy"]:
        args += ["--maxmemory-policy", svc.options["maxmemory_policy"]]
    return args


KIND = Redis()
