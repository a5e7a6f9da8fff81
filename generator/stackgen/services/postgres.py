"""PostgreSQL: `databases:` each owned by a role of the same name, `extensions:` created in
each of them. NixOS uses nixpkgs' module; the containers run the pgvector image (or `image:`)
with an init script."""

from __future__ import annotations

import re
from typing import Any

from ..charset import Word
from ..spec import checks as ck
from ..errors import shown
from ..escape import sh_quote
from ..spec.checks import INVALID, Collector, dotted
from ..spec.model import POSTGRES_EXTENSION_SQL, POSTGRES_PRELOAD, POSTGRES_VERSIONS
from ..records import replace
from .base import Endpoint, Kind

TIMESCALE_HA = "timescaledb-ha"  # Timescale's HA image (docker.io/timescale/timescaledb-ha)
PGVECTOR_RELEASE = "0.8.1"  # pgvector/pgvector publishes <release>-pg<major> for PostgreSQL 13..18
# Extensions the default image (pgvector/pgvector) carries; others need `image:`.
DEFAULT_EXTENSIONS = ("pgvector",)
# nixpkgs' postgresqlPackages attribute of each extension where it is not the extension's own
# name (the NixOS and processes targets): nixpkgs' `timescaledb` is built with the Timescale License (unfree; `enableUnfree ? true`):
# NixOS gets the Apache-2.0 build, `timescaledb-apache` (same library, without the TSL features
# such as compression and continuous aggregates), which no unfree predicate has to admit.
NIXOS_EXTENSION_PACKAGES = {"timescaledb": "timescaledb-apache"}

IDENT = ck.string(pattern=Word(r"[a-z_][a-z0-9_]{0,62}"), describe="a plain SQL identifier (lowercase letters, digits, '_')")
# Names a database (and its owner role, named like it) cannot take: they exist in every cluster
# (the superuser and its database, the templates) or PostgreSQL reserves them as role names.
RESERVED_DATABASES = {
    "postgres": "the superuser role and its database exist in every cluster",
    "template0": "a template database that exists in every cluster",
    "template1": "a template database that exists in every cluster",
    "public": "PostgreSQL reserves it as a role name",
    "none": "PostgreSQL reserves it as a role name",
}


def _database(c: Collector, path: tuple, value: Any) -> Any:
    """A database name that the init SQL (CREATE DATABASE, and CREATE ROLE of the same name)
    and NixOS's ensureDatabases/ensureUsers can create in a fresh cluster."""
    value = IDENT(c, path, value)
    if value is INVALID:
        return value
    why = RESERVED_DATABASES.get(value) or ("PostgreSQL reserves role names starting with pg_" if value.startswith("pg_") else None)
    if why:
        return c.error(
            path,
            f"{dotted(path)} {value!r} cannot be a database name: each database gets an owner role of the same name, and {why}",
            "choose another name, such as app or aidb",
        )
    return value


SETTING_KEY = r"[a-z_][a-z0-9_.]*"  # compiled at first use: most specs set none
# postgresql.conf keys that stackgen sets itself, with what to do instead.
OWNED_SETTINGS = {
    "port": "set services.{name}.port",
    "listen_addresses": "set services.{name}.host",
    "shared_preload_libraries": "list the extensions under services.{name}.extensions: stackgen preloads those that need it",
    "cron.database_name": "pg_cron runs in the first database of services.{name}.databases",
    "unix_socket_directories": "the image (or NixOS's module) places the socket where its clients look for it",
    "data_directory": "the data directory is the service's volume (NixOS: services.postgresql.dataDir)",
    "hba_file": "stackgen writes the authentication rules (NixOS: services.postgresql.authentication)",
    "ident_file": "stackgen owns the server's configuration files",
    "config_file": "stackgen owns the server's configuration files",
}


def _settings(c: Collector, path: tuple, value: Any) -> Any:
    """`settings:` postgresql.conf keys and their values (text, numbers, booleans)."""
    if value is None:  # `settings:` with nothing under it
        return {}
    if not isinstance(value, dict):
        return c.error(path, f"{dotted(path)} must be a mapping of postgresql.conf keys, not {ck.kind_of(value)}")
    out: dict[str, Any] = {}
    ok = True
    for key, val in value.items():
        kpath = path + (key,)
        if not isinstance(key, str) or len(key) > 63 or not re.fullmatch(SETTING_KEY, key):
            c.error(kpath, f"{dotted(path)} key {shown(key)!r} is not a postgresql.conf key", "use lowercase letters, digits, '_' and '.' (such as work_mem)", at_key=True)
            ok = False
        elif key in OWNED_SETTINGS:
            c.error(kpath, f"{dotted(kpath)} is set by stackgen", OWNED_SETTINGS[key].format(name=path[-2]), at_key=True)
            ok = False
        elif (got := ck.setting_value(c, kpath, val)) is INVALID:
            ok = False
        else:
            out[key] = got
    return out if ok else INVALID




def setting_text(value: Any) -> str:
    """A setting's value as PostgreSQL reads it from `-c key=value` (booleans as on/off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


class Postgres(Kind):
    name = "postgres"
    port = 5432
    container_port = 5432
    fields = {
        "version": ck.enum(POSTGRES_VERSIONS),
        "databases": ck.listof(_database, max_len=100),
        "extensions": ck.listof(ck.enum(POSTGRES_EXTENSION_SQL)),
        "settings": _settings,
        "password_file": ck.abspath,
    }
    defaults = {"version": 17, "databases": (), "extensions": (), "settings": {}, "password_file": None}
    secrets = {"password_file": "/run/secrets/postgres-password (the bare password)"}
    secret_variables = {"password_file": "PASSWORD_FILE"}
    container_auth = "password_file"
    conventional = ("DATABASE_URL",)
    component = "database"
    storage = "10Gi"

    def default_image(self, svc) -> str:
        return f"docker.io/pgvector/pgvector:{PGVECTOR_RELEASE}-pg{svc.options['version']}"

    def url(self, svc, at: Endpoint) -> str:
        # The first database and its owner role; the password travels as <NAME>_PASSWORD_FILE.
        db = svc.options["databases"][0] if svc.options["databases"] else "postgres"
        return f"postgresql://{db}@{at.authority}/{db}"

    def conventional_env(self, svc, at: Endpoint) -> dict[str, str]:
        return {"DATABASE_URL": self.url(svc, at)}

    def container_checks(self, c: Collector, svc) -> None:
        if svc.image is not None:
            return
        for i, ext in enumerate(svc.options["extensions"]):
            if ext not in DEFAULT_EXTENSIONS:
                c.error(
                    ("services", svc.name, "extensions", i),
                    f"the default postgres container image ({self.default_image(svc)}) has no {ext}",
                    f"set services.{svc.name}.image to an image that includes {ext}, or drop the container targets (compose, quadlet, home-manager, kubernetes)",
                )

    def kubernetes(self, spec, ctr):
        """A volume's root holds lost+found on most storage classes, and initdb refuses a
        non-empty folder: the cluster lives in a folder below it (PostgreSQL 18 images already
        keep it in a versioned folder below their mount point)."""
        (_, mount), = ctr.volumes
        if TIMESCALE_HA in ctr.image:  # runs as postgres (uid/gid 1000), keeps the cluster in pgdata/data
            return replace(ctr, fs_group=1000)
        if mount.endswith("/data"):
            return replace(ctr, env={**ctr.env, "PGDATA": f"{mount}/pgdata"})
        return ctr

    def process(self, spec, svc):
        return _process(spec, svc)

    def health(self, svc):
        from .health import Check

        # pg_isready (the server's own client) connects without authenticating
        return Check(command=lambda place: f"pg_isready -q -h {sh_quote(place.at.host)} -p {place.at.port} -U postgres")

    def process_sockets(self, svc):
        # postgres.sh: the server's socket folder STATE/run; PostgreSQL names the socket itself.
        return (f"{svc.name}/{PROCESS_SOCKET_DIR}/.s.PGSQL.{svc.port}",)

    def container(self, spec, svc, peer):
        from ..containers import base, secret, secret_path

        version = svc.options["version"]
        databases = list(svc.options["databases"])
        extensions = list(svc.options["extensions"])
        pw = secret(svc, "password_file")
        env = {}
        if databases:
            env["POSTGRES_DB"] = databases[0]
        if pw:
            env["POSTGRES_PASSWORD_FILE"] = secret_path(pw[0])
        else:  # no password: local trust (spec validation refuses this on an exposed host)
            env["POSTGRES_HOST_AUTH_METHOD"] = "trust"
        return base(
            svc, self,
            self.container_health(svc),
            data=data_dir(version, svc.image or self.default_image(svc)),
            secrets=(pw,) if pw else (),
            env=env,
            command=server_command(svc),
            init_sql=init_sql(databases, extensions, secret_path(pw[0]) if pw else None),
        )  # fmt: skip


def server_settings(svc) -> dict[str, Any]:
    """Every postgresql.conf setting the server runs with beyond the image's defaults: the ones
    stackgen owns for the extensions (the same on NixOS, see `nixos`), then the spec's."""
    extensions = svc.options["extensions"]
    own: dict[str, Any] = {}
    preload = [e for e in POSTGRES_PRELOAD if e in extensions]
    if preload:
        own["shared_preload_libraries"] = ",".join(preload)
    if "pg_cron" in extensions:
        own["cron.database_name"] = cron_database(svc.options["databases"])
    return {**own, **svc.options["settings"]}


def server_command(svc) -> tuple[str, ...]:
    """The container's command: `postgres` and a `-c key=value` per setting, each one argv
    word (no shell: spaces and quotes in a value reach PostgreSQL as written)."""
    settings = server_settings(svc)
    if not settings:
        return ()
    return ("postgres", *(word for key, value in settings.items() for word in ("-c", f"{key}={setting_text(value)}")))


def cron_database(databases) -> str:
    """Where pg_cron runs (cron.database_name) and its extension is created, on every target:
    the first database (the application's), else postgres."""
    return databases[0] if databases else "postgres"


def data_dir(version: int, image: str) -> str:
    """Where a postgres image keeps its data (the volume's mount point)."""
    if TIMESCALE_HA in image:  # Timescale's HA image runs as user postgres from its home
        return "/home/postgres/pgdata"
    # PostgreSQL 18 images keep PGDATA in a versioned folder under /var/lib/postgresql.
    return "/var/lib/postgresql" if version >= 18 else "/var/lib/postgresql/data"


def init_sql(databases: list[str], extensions: list[str], password_file: str | None) -> str | None:
    """SQL the image's entrypoint runs once, as the superuser, on an empty data directory:
    the databases, each owned by a role of its own name (as on NixOS, ensureDBOwnership),
    the extensions, and the roles' password when there is a password file."""
    if not databases and not extensions:
        return None
    lines = [
        "-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.",
        "-- The postgres image runs this once, when it initializes an empty data volume.",
    ]
    lines += [f'CREATE DATABASE "{db}";' for db in databases[1:]]
    for db in databases:
        lines += [f'CREATE ROLE "{db}" LOGIN;', f'ALTER DATABASE "{db}" OWNER TO "{db}";']
    for db in databases or ["postgres"]:
        names = [POSTGRES_EXTENSION_SQL[e] for e in extensions if e != "pg_cron"]
        if names:
            lines.append(f'\\connect "{db}"')
            lines += [f'CREATE EXTENSION IF NOT EXISTS "{name}";' for name in names]
    if "pg_cron" in extensions:  # only in cron.database_name (the container's command sets it)
        lines += [f'\\connect "{cron_database(databases)}"', 'CREATE EXTENSION IF NOT EXISTS "pg_cron";']
    if password_file:
        lines += password_sql(databases, password_file)
    return "\n".join(lines) + "\n"


def password_sql(databases: list[str], password_file: str) -> list[str]:
    """psql lines that give each owner role the password in `password_file` (never inline)."""
    if not databases:
        return []
    return [f"\\set password `cat {password_file}`"] + [f"ALTER ROLE \"{db}\" WITH PASSWORD :'password';" for db in databases]


def nixos_settings(svc) -> dict[str, Any]:
    """The spec's settings for services.postgresql.settings. nixpkgs writes a text value into
    postgresql.conf as '<value>' with only `'` doubled, but PostgreSQL reads backslash escapes
    in a quoted value (\\n, \\t, octal, `\\x` -> x): each backslash is doubled here, so the
    server reads the value the spec gives, as it does from the containers' `-c` words."""
    return {k: v.replace("\\", "\\\\") if isinstance(v, str) else v for k, v in svc.options["settings"].items()}


def nixos(svc) -> dict:
    """What nixos.nix.j2 needs beyond the options: preload libraries and the extensions to create."""
    databases = list(svc.options["databases"])
    extensions = list(svc.options["extensions"])
    cron_db = cron_database(databases)
    create = [(db, POSTGRES_EXTENSION_SQL[ext]) for db in databases for ext in extensions if ext != "pg_cron"]
    if "pg_cron" in extensions:
        create.append((cron_db, "pg_cron"))
    return {
        "extensions": extensions,
        "preload": ",".join(e for e in POSTGRES_PRELOAD if e in extensions),
        "cron_db": cron_db if "pg_cron" in extensions else None,
        "create": create,
    }

def process_init_sql(svc) -> str | None:
    """The init SQL a native cluster runs once (nix/processes/postgres.sh, with psql as the
    superuser): the first database (which the image's entrypoint creates itself from
    POSTGRES_DB), then the containers' init SQL; psql reads the password from the file the
    script passes as the variable password_file (never inline)."""
    databases = list(svc.options["databases"])
    sql = init_sql(databases, list(svc.options["extensions"]), ":'password_file'" if svc.options["password_file"] else None)
    if sql is None:
        return None
    lines = sql.split("\n")
    head = [lines[0], "-- nix/processes/postgres.sh runs this once, when it initializes an empty data folder."]
    first = [f'CREATE DATABASE "{databases[0]}";'] if databases else []
    return "\n".join(head + first + lines[2:])


# The folder in a native cluster's state folder where its server puts its Unix socket
# (postgres.sh; the superuser logs in only there).
PROCESS_SOCKET_DIR = "run"


def process_init_path(svc) -> str:
    return f"nix/processes/{svc.name}-init.sql"


def process_package(svc) -> str:
    """postgresql_<version> with the spec's extensions, as the NixOS target builds it."""
    pkg = f"pkgs.postgresql_{svc.options['version']}"
    exts = [NIXOS_EXTENSION_PACKAGES.get(e, e) for e in svc.options["extensions"]]
    if not exts:
        return pkg
    return f"({pkg}.withPackages (ps: [ {' '.join('ps.' + e for e in exts)} ]))"


def _process(spec, svc):
    """The cluster under the instance's state folder, initialized once by postgres.sh; stopped
    with SIGINT (PostgreSQL's fast shutdown: clients cut off, data flushed)."""
    from ..procplan import Process, script, state, words

    init = f'"$STACKGEN_TREE"/{process_init_path(svc)}' if process_init_sql(svc) else "''"
    args = [w for key, value in server_settings(svc).items() for w in ("-c", f"{key}={setting_text(value)}")]
    return Process(
        name=svc.name,
        command=f"exec bash {script('postgres.sh')} {state(svc)} {words(svc.host, svc.port)} {init} {words(svc.options['password_file'] or '')} {words(*args)}".rstrip(),
        probe=KIND.process_probe(spec, svc),
        shutdown_signal=2,
        packages=(process_package(svc),),
    )



KIND = Postgres()
