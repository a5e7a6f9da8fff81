"""Per-kind settings (redis maxmemory_policy and appendonly, postgres `settings:`, qdrant
`settings:`) reach every target that runs the service, read back by the real consumers:

- compose: docker-compose 2.x `config`; Quadlet: podman's generator (the argv systemd runs);
- the container command, as compose hands it over, run by a real redis-server and a real
  PostgreSQL (Debian's packages) on a loopback port, and the values read back with CONFIG GET
  and SHOW;
- NixOS: the rendered module evaluated by nixpkgs' lib.evalModules against the option mirror,
  the settings read back from the evaluated config.

The same spec drives all of them, so the targets cannot drift apart (pg_cron's database was
such a drift: `postgres` in the containers, the first database on NixOS).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import render_text, require_tool, yaml_str
from httpfakes import free_port
from stackgen.escape import nix_value
from stackgen.services import postgres as pg
from stackgen.services import qdrant, redis
from test_container_sinks import compose_config, podman_run, split_run
from test_status import _user_exists, daemon

OPTIONS = Path(__file__).parents[1] / "nix" / "options"
# Text that every sink must carry literally: shell, compose interpolation, systemd specifiers
# and quoting, Nix interpolation, postgresql.conf quoting, non-ASCII.
HOSTILE = "$(touch /tmp/pwned) `id` 'q' \"dq\" \\ %n %% # ${HOME} $HOME $$ ;&|*?~! é🦙\u00a0="
PG_IMAGE = "docker.io/pgvector/pgvector:0.8.1-pg17"

PG_SETTINGS = {
    "work_mem": "64MB",
    "jit": False,
    "random_page_cost": 1.1,
    "log_min_duration_statement": -1,
    "search_path": '"$user", public',
    "stackgen_test.note": HOSTILE,  # a placeholder variable: PostgreSQL keeps any text as given
}
QDRANT_SETTINGS = {"storage": {"on_disk_payload": True}, "service": {"max_request_size_mb": 64}, "log_level": HOSTILE, "telemetry_disabled": False}


def yaml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return yaml_str(value) if isinstance(value, str) else repr(value)


def spec_text(redis_extra: str = "{maxmemory: 512mb, maxmemory_policy: allkeys-lru}") -> str:
    pg_lines = "".join(f"      {yaml_str(k)}: {yaml_scalar(v)}\n" for k, v in PG_SETTINGS.items())
    return (
        "version: 1\nname: tuned\nnixpkgs: nixos-26.05\ntargets: [compose, quadlet, nixos]\nservices:\n"
        "  postgres:\n    databases: [app, other]\n    extensions: [pgvector, pg_cron]\n"
        "    image: docker.io/example/postgres-cron:17\n"
        f"    settings:\n{pg_lines}"
        f"  redis: {redis_extra}\n"
        "  qdrant:\n    settings:\n      storage: {on_disk_payload: true}\n      service: {max_request_size_mb: 64}\n"
        f"      log_level: {yaml_str(HOSTILE)}\n      telemetry_disabled: false\n"
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("tuned")
    return out, render_text(spec_text(), out)


@pytest.fixture(scope="module")
def compose(rendered):
    return compose_config(rendered[0])["services"]


def expected_pg_words() -> list[str]:
    own = ["-c", "shared_preload_libraries=pg_cron", "-c", "cron.database_name=app"]
    return ["postgres", *own, *(w for k, v in PG_SETTINGS.items() for w in ("-c", f"{k}={pg.setting_text(v)}"))]


def test_compose_and_quadlet_carry_the_settings_exactly(rendered, compose, tmp_path):
    out, files = rendered
    assert compose["postgres"]["command"] == expected_pg_words()
    assert compose["redis"]["command"] == ["redis-server", "--appendonly", "yes", "--maxmemory", "512mb", "--maxmemory-policy", "allkeys-lru", "--protected-mode", "no"]
    env = compose["qdrant"]["environment"]
    assert {k: v for k, v in env.items() if k.startswith("QDRANT__")} == {
        "QDRANT__STORAGE__ON_DISK_PAYLOAD": "true",
        "QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "64",
        "QDRANT__LOG_LEVEL": HOSTILE,
        "QDRANT__TELEMETRY_DISABLED": "false",
    }
    units = {p: t for p, t in files.items() if p.startswith("quadlet/") and not p.endswith(".sql")}
    _, command = split_run(podman_run(units, tmp_path, "tuned-postgres"), "docker.io/example/postgres-cron:17")
    assert command == compose["postgres"]["command"]
    _, command = split_run(podman_run(units, tmp_path, "tuned-redis"), redis.IMAGE)
    assert command == compose["redis"]["command"]
    flags, _ = split_run(podman_run(units, tmp_path, "tuned-qdrant"), qdrant.IMAGE)
    assert sorted(e for e in flags["--env"] if e.startswith("QDRANT__")) == sorted(f"{k}={v}" for k, v in env.items() if k.startswith("QDRANT__"))


def test_pg_cron_lives_in_the_first_database_in_the_containers(rendered, compose):
    """The init script creates pg_cron where cron.database_name points (pg_cron refuses any
    other database), and that is the first database, as on NixOS (test_nixos_...)."""
    sql = rendered[1]["compose/postgres-init.sql"]
    before, after = sql.split('CREATE EXTENSION IF NOT EXISTS "pg_cron";')[0].rsplit("\\connect ", 1)
    assert after.strip() == '"app"'
    assert "cron.database_name=app" in compose["postgres"]["command"]


# --- the real servers ------------------------------------------------------------------------


def test_real_redis_runs_with_the_rendered_arguments(compose):
    binary = require_tool("redis-server", "the rendered arguments are read by a real Redis")
    args = compose["redis"]["command"][1:]
    port, folder = free_port(), tempfile.mkdtemp(prefix="stackgen-redis-")
    with daemon([binary, *args, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder], port, "redis-server", folder):
        got = {}
        for key in ("appendonly", "maxmemory", "maxmemory-policy"):
            proc = subprocess.run(["redis-cli", "-p", str(port), "--raw", "CONFIG", "GET", key], capture_output=True, text=True, timeout=10, check=True)
            got[key] = proc.stdout.split("\n")[1]
    assert got == {"appendonly": "yes", "maxmemory": str(512 * 1024 * 1024), "maxmemory-policy": "allkeys-lru"}


@pytest.mark.parametrize("given,flag", [("{}", "yes"), ("{appendonly: true}", "yes"), ("{appendonly: false}", "no")])
def test_appendonly_is_one_default_everywhere(given, flag, tmp_path, nix, nixpkgs_lib):
    files = render_text(spec_text(given), tmp_path)
    assert ["--appendonly", flag] == compose_config(tmp_path)["services"]["redis"]["command"][1:3]
    assert [ln for ln in files["quadlet/tuned-redis.container"].splitlines() if ln.startswith("Exec=")] == [
        f"Exec=redis-server --appendonly {flag} --protected-mode no"
    ]
    got = evaluate(nix, nixpkgs_lib, tmp_path, "config.services.redis.servers.tuned.appendOnly")
    assert got is (flag == "yes")


SHOWN = {
    "work_mem": "64MB",
    "jit": "off",
    "random_page_cost": "1.1",
    "log_min_duration_statement": "-1",
    "search_path": '"$user", public',
    "stackgen_test.note": HOSTILE,
    "cron.database_name": "app",
}


def postgres_show(args: list[str], conf_lines: list[str], keys) -> dict[str, str]:
    """SHOW `keys` on a real PostgreSQL started with `args` and `conf_lines` appended to its
    postgresql.conf (Debian's package; as root, run as the postgres user)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else require_tool("initdb", "the rendered settings are read by a real PostgreSQL")
    server, psql = (os.path.join(os.path.dirname(initdb), name) for name in ("postgres", "psql"))
    data = tempfile.mkdtemp(prefix="stackgen-pg-")
    as_user: dict = {}
    if os.geteuid() == 0:  # root cannot run postgres
        entry = pwd.getpwnam("postgres" if _user_exists("postgres") else "nobody")
        os.chown(data, entry.pw_uid, entry.pw_gid)
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": {"PATH": os.defpath, "LC_ALL": "C"}}
    subprocess.run([initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"], check=True, capture_output=True, **as_user)
    with open(os.path.join(data, "postgresql.conf"), "a", encoding="utf-8") as conf:
        conf.write("".join(line + "\n" for line in conf_lines))
    port = free_port()
    cmd = [server, "-D", data, "-p", str(port), "-h", "127.0.0.1", "-k", data, "-c", "fsync=off", *args]
    got = {}
    with daemon(cmd, port, "postgres", data, signal.SIGINT, **as_user):
        # The port opens before recovery ends ("the database system is starting up"): wait until
        # the server accepts connections, or the first SHOW fails now and then.
        deadline = time.monotonic() + 30
        while subprocess.run([os.path.join(os.path.dirname(initdb), "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode != 0:
            assert time.monotonic() < deadline, "postgres did not accept connections within 30 s"
            time.sleep(0.05)
        for key in keys:
            proc = subprocess.run([psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-XAtc", f'SHOW "{key}"'], capture_output=True, text=True, timeout=20, check=True)
            got[key] = proc.stdout.removesuffix("\n")
    return got


def test_real_postgres_shows_the_container_settings(compose):
    # pg_cron is not installed here: preloading it would stop the server; everything else as rendered
    words = compose["postgres"]["command"][1:]
    i = words.index("shared_preload_libraries=pg_cron")
    assert postgres_show(words[: i - 1] + words[i + 1 :], [], SHOWN) == SHOWN


# How nixpkgs' postgresql module writes services.postgresql.settings into postgresql.conf
# (`toStr` in nixos/modules/services/databases/postgresql.nix): booleans as yes/no, text in
# single quotes with only ' doubled, anything else through toString.
NIXPKGS_CONF_LINES = """lib.mapAttrsToList (n: v: "${n} = ${
  if true == v then "yes" else if false == v then "no"
  else if builtins.isString v then "'${lib.replaceStrings [ "'" ] [ "''" ] v}'" else toString v}")
  (removeAttrs config.services.postgresql.settings [ "port" "shared_preload_libraries" ])"""


def test_real_postgres_shows_the_nixos_settings(rendered, nix, nixpkgs_lib):
    """The evaluated module's settings, written into postgresql.conf as nixpkgs writes them,
    reach PostgreSQL as the spec gives them: a backslash too, which the conf file reads as an
    escape (so the module doubles it)."""
    assert "\\" in HOSTILE
    lines = evaluate(nix, nixpkgs_lib, rendered[0], NIXPKGS_CONF_LINES)
    assert postgres_show([], lines, SHOWN) == SHOWN


# --- NixOS: the real module system -----------------------------------------------------------


def evaluate(nix, lib: Path, tree: Path, attr: str):
    """`attr` (a Nix expression over `config`) of the rendered NixOS module, evaluated by
    lib.evalModules against the 26.05 option mirror."""
    expr = (
        f"let lib = import {lib}; eval = lib.evalModules {{ modules = [ {OPTIONS}/nixos-26.05.nix {tree}/nix/nixos.nix "
        f"{{ _module.args.pkgs = import {OPTIONS}/stub-pkgs.nix {{ inherit lib; }}; }} ]; }}; config = eval.config; in {attr}"
    )
    return json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)


def test_nixos_evaluates_to_the_same_settings(rendered, compose, nix, nixpkgs_lib):
    tree = rendered[0]
    settings = evaluate(nix, nixpkgs_lib, tree, "config.services.postgresql.settings")
    # text as postgresql.conf reads it (backslashes doubled: test_real_postgres_shows_the_nixos_settings)
    note = HOSTILE.replace("\\", "\\\\")
    assert settings == {"port": 5432, "shared_preload_libraries": "pg_cron", "cron.database_name": "app", **PG_SETTINGS, "stackgen_test.note": note}
    # the same keys as the containers' -c words (and the same values, as both servers SHOW)
    words = compose["postgres"]["command"][2::2]
    assert sorted(w.split("=", 1)[0] for w in words) == sorted(k for k in settings if k != "port")

    got = evaluate(nix, nixpkgs_lib, tree, "config.services.redis.servers.tuned")
    assert (got["appendOnly"], got["settings"]) == (True, {"maxmemory": "512mb", "maxmemory-policy": "allkeys-lru"})

    got = evaluate(nix, nixpkgs_lib, tree, "config.services.qdrant.settings")
    # merged over the module's own defaults (mkDefault), which stay where the spec says nothing
    assert got == {
        "service": {"host": "127.0.0.1", "http_port": 6333, "grpc_port": 6334, "max_request_size_mb": 64},
        "storage": {"storage_path": "/var/lib/qdrant/storage", "on_disk_payload": True},
        "telemetry_disabled": False,
        "log_level": HOSTILE,
    }


def test_nixos_creates_pg_cron_in_the_first_database(rendered, nix, nixpkgs_lib):
    script = evaluate(nix, nixpkgs_lib, rendered[0], "config.systemd.services.stackgen-postgres-setup.script")
    [line] = [ln.strip() for ln in script.splitlines() if "pg_cron" in ln]
    assert line == "psql -v ON_ERROR_STOP=1 -d app -c 'CREATE EXTENSION IF NOT EXISTS pg_cron'"


@pytest.mark.parametrize("value", [1.1, -1.5, 1e-05, 1e16, -2.5e-10, 0.0, -7, 3])
def test_nix_numbers_evaluate_to_the_value(value, nix):
    """Nix has no negative literals (`f -1` subtracts) and needs a '.' before an exponent."""
    kind, got = json.loads(nix("--eval", "--strict", "--json", "-E", f"let f = x: x; v = f {nix_value(value)}; in [ (builtins.typeOf v) v ]").stdout)
    assert (kind, got) == ("float" if isinstance(value, float) else "int", value)
