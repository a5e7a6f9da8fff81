"""The container targets' PostgreSQL init script, run by a real PostgreSQL the way the postgres
image runs it: hostile database names (whatever validation admits) and passwords end up as
exactly those databases, owner roles and passwords, and nothing else is created.

The image's entrypoint creates POSTGRES_DB (the first database) itself, then runs
/docker-entrypoint-initdb.d/*.sql with `psql -v ON_ERROR_STOP=1 --no-psqlrc` as the superuser,
with the password file mounted at /run/secrets/postgres-password. This test does the same
against a cluster started here (Debian's postgresql package), with the password file at a
temporary path in place of the mount point.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require_tool
from httpfakes import free_port
from stackgen import containers
from stackgen.errors import StackError
from stackgen.render import render_tree
from stackgen.spec.loader import parse
from stackgen.services.postgres import RESERVED_DATABASES
from stackgen.spec.validate import validate

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MOUNT = containers.secret_path("postgres-password")

# SQL keywords and role-spec words are legal names once quoted; the reserved ones must be refused.
WORDS = ["user", "select", "all", "current_user", "session_user", "current_role", "default", "replication", "table", "_", "x"]
NAME = st.one_of(st.sampled_from(WORDS + sorted(RESERVED_DATABASES) + ["pg_x", "pg_"]), st.from_regex(r"[a-z_][a-z0-9_]{0,62}", fullmatch=True))
PASSWORD_META = ["'", '"', "\\", "$$", "$1$", ";", ":'password'", "`", "\\set", "\\! touch /tmp/x", "--", "/*", "%", "${X}", "''", " ", "\t"]
PASSWORD = st.lists(
    st.one_of(st.sampled_from(PASSWORD_META), st.characters(exclude_categories=("Cs", "Cc"))), min_size=1, max_size=16
).map("".join)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class Cluster:
    """A throwaway cluster: trust for the superuser on its socket, scram-sha-256 over TCP."""

    def __init__(self):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = found[-1] if found else require_tool("initdb", "the init SQL is run by a real PostgreSQL")
        self.bin = os.path.dirname(initdb)
        self.psql_bin = require_tool("psql", "the init SQL is run by psql, as the postgres image does")
        self.dir = tempfile.mkdtemp(prefix="stackgen-pginit-")
        self.as_user: dict = {}
        if os.geteuid() == 0:  # postgres refuses to run as root
            entry = pwd.getpwnam("postgres" if _user_exists("postgres") else "nobody")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            self.as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": {"PATH": os.defpath, "LC_ALL": "C"}}
        data = os.path.join(self.dir, "data")
        subprocess.run(
            [initdb, "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
            check=True, capture_output=True, **self.as_user,
        )  # fmt: skip
        self.port = free_port()
        cmd = [os.path.join(self.bin, "postgres"), "-D", data, "-p", str(self.port), "-h", "127.0.0.1", "-k", self.dir, "-c", "fsync=off"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **self.as_user)
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.dir, f".s.PGSQL.{self.port}")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"postgres did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)

    def psql(self, *args: str, db: str = "postgres", user: str = "postgres", tcp: bool = False, env: dict | None = None, stdin: str | None = None) -> str:
        """psql's output; `stdin` is a script (where psql interpolates :"variables", unlike -c)."""
        host = "127.0.0.1" if tcp else self.dir
        conn = ["-h", host, "-p", str(self.port), "-U", user, "-d", db]
        proc = subprocess.run(
            [self.psql_bin, "-X", "-v", "ON_ERROR_STOP=1", "-tA", *conn, *args],
            capture_output=True, text=True, input=stdin, env={"PATH": os.defpath, "LC_ALL": "C.UTF-8", **(env or {})},
        )  # fmt: skip
        assert proc.returncode == 0, f"psql {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout

    def names(self, sql: str) -> set[str]:
        return set(filter(None, self.psql("-c", sql).split("\n")))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    try:
        yield c
    finally:
        c.stop()


BASE_DATABASES = {"postgres", "template0", "template1"}
ROLES = "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'"
DATABASES = "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')"


def spec(databases: list[str]) -> str:
    names = ", ".join(f'"{d}"' for d in databases)
    return (
        "version: 1\nname: pginit\ntargets: [compose, quadlet]\n"
        f"services:\n  postgres:\n    databases: [{names}]\n    password_file: /run/secrets/pg\n"
    )


def init_sql(databases: list[str]) -> str | None:
    """The rendered init script (identical for compose and Quadlet), or None when validation refuses the names."""
    try:
        loaded = validate(parse(spec(databases), "stack.yaml"))
    except StackError as exc:
        assert any(d in RESERVED_DATABASES or d.startswith("pg_") for d in databases), str(exc)
        assert "cannot be a database name" in str(exc)
        return None
    files = {f.path: f.text for f in render_tree(loaded)}
    assert files["compose/postgres-init.sql"] == files["quadlet/pginit-postgres-init.sql"]
    return files["compose/postgres-init.sql"]


def run_as_the_image(cluster: Cluster, sql: str, databases: list[str], password: str, tmp: Path) -> None:
    secret = tmp / "postgres-password"
    secret.write_text(password + "\n")  # as `echo` writes it: psql's backquote drops the newline
    assert MOUNT in sql
    script = tmp / "10-stackgen.sql"
    script.write_text(sql.replace(MOUNT, str(secret)))
    cluster.psql("-v", f"db={databases[0]}", stdin='CREATE DATABASE :"db";\n')  # POSTGRES_DB, by the entrypoint
    cluster.psql("-f", str(script), db=databases[0])


def reset(cluster: Cluster) -> None:
    for db in cluster.names(DATABASES):
        cluster.psql("-v", f"n={db}", stdin='DROP DATABASE :"n";\n')
    for role in cluster.names(ROLES):
        cluster.psql("-v", f"n={role}", stdin='DROP ROLE :"n";\n')


@SETTINGS
@given(databases=st.lists(NAME, min_size=1, max_size=3, unique=True), password=PASSWORD)
def test_init_sql_creates_exactly_the_databases_roles_and_password(cluster, tmp_path_factory, databases, password):
    sql = init_sql(databases)
    if sql is None:
        return  # refused by validation, with the reason (asserted in init_sql)
    reset(cluster)
    run_as_the_image(cluster, sql, databases, password, tmp_path_factory.mktemp("init"))
    assert cluster.names(DATABASES) == set(databases)
    assert cluster.names(ROLES) == set(databases)
    owners = cluster.psql("-c", "SELECT datname || '=' || pg_get_userbyid(datdba) FROM pg_database")
    for db in databases:
        assert f"{db}={db}\n" in owners
        # the owner logs in over TCP with scram-sha-256, with exactly the file's password
        who = cluster.psql("-c", "SELECT current_user || ' ' || current_database()", db=db, user=db, tcp=True, env={"PGPASSWORD": password})
        assert who == f"{db} {db}\n"
    # nothing else: no table, function or other object in any of the new databases
    for db in databases:
        objects = cluster.psql("-c", "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'", db=db)
        assert objects == "0\n"


def test_a_wrong_password_is_refused(cluster, tmp_path):
    """The login check above can fail: the role exists but another password is refused."""
    reset(cluster)
    run_as_the_image(cluster, init_sql(["app"]), ["app"], "right", tmp_path)
    proc = subprocess.run(
        [cluster.psql_bin, "-X", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "app", "-d", "app", "-c", "SELECT 1"],
        capture_output=True, text=True, env={"PATH": os.defpath, "PGPASSWORD": "wrong"},
    )  # fmt: skip
    assert proc.returncode != 0 and "password authentication failed" in proc.stderr


def test_reserved_names_fail_in_a_real_cluster_and_are_refused(cluster):
    """Why validation refuses them: each reserved name breaks CREATE ROLE / CREATE DATABASE."""
    reset(cluster)
    for name in [*RESERVED_DATABASES, "pg_x"]:
        assert init_sql([name]) is None
        proc = subprocess.run(
            [cluster.psql_bin, "-X", "-v", "ON_ERROR_STOP=1", "-h", cluster.dir, "-p", str(cluster.port), "-U", "postgres", "-d", "postgres",
             "-c", f'CREATE ROLE "{name}" LOGIN', "-c", f'CREATE DATABASE "{name}"'],
            capture_output=True, text=True, env={"PATH": os.defpath},
        )  # fmt: skip
        assert proc.returncode != 0, name
    reset(cluster)
