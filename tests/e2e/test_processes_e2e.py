"""A rendered `processes` stack run for real: process-compose (built by tests/install-deps.sh),
Debian's PostgreSQL 15 (with pgvector, which tests/install-deps.sh builds from source because
Debian 12 packages none, and pg_cron) and redis-server standing in for the Nix packages (first on
PATH), and an `app` that uses both.

What it proves: every process becomes healthy in dependency order (the app's first try reaches
both servers, so it never restarts), the app connects through its connection variables with
the passwords from the *_PASSWORD_FILE paths, the first start initializes the cluster (database,
owner role, password, the pgvector and pg_cron extensions, preload setting; the app runs a
vector query) and a restart keeps the data (a row and a
Redis counter survive `down` + `up`), and `down` leaves no process behind (every process of
the stack's tree, looked up in /proc, is gone). It prints the time from start to all healthy.

PostgreSQL refuses to run as root, so as root (CI) the whole stack runs as the `postgres`
user (Debian's package creates it), as a developer would run it as themself; the state folder
and the password files belong to that user.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import require_tool
from httpfakes import free_ports
from stackgen.render import render_tree
from stackgen.spec.loader import parse
from stackgen.spec.validate import validate

# The app: both servers through its connection variables, the passwords read from the files
# the variables name; a row and a counter per start (appended to the marker), then it serves
# /health on its port.
APP = r"""
import json, os, subprocess, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

def run(cmd, env):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout.strip()

pg_password = open(os.environ["POSTGRES_PASSWORD_FILE"]).read().rstrip("\n")
rows = run(["psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", os.environ["DATABASE_URL"], "-c",
            "CREATE TABLE IF NOT EXISTS starts(at timestamptz DEFAULT now());"
            " INSERT INTO starts DEFAULT VALUES; SELECT count(*) FROM starts;"], {"PGPASSWORD": pg_password})
ext = run(["psql", "-X", "-qtA", os.environ["DATABASE_URL"], "-c",
           "SELECT extname FROM pg_extension WHERE extname = 'pg_cron'"], {"PGPASSWORD": pg_password})
# pgvector, created by the init SQL in the app's database: its version, a distance, and a
# nearest-neighbour search through an HNSW index (the rows accumulate over the starts).
vector = run(["psql", "-X", "-qtA", "-v", "ON_ERROR_STOP=1", os.environ["DATABASE_URL"],
              "-c", "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
              "-c", "SELECT '[1,2,3]'::vector <-> '[1,2,4]'",
              "-c", "CREATE TABLE IF NOT EXISTS items(id serial, embedding vector(3));"
                    " CREATE INDEX IF NOT EXISTS items_hnsw ON items USING hnsw (embedding vector_l2_ops);"
                    " INSERT INTO items(embedding) VALUES ('[1,1,1]'), ('[9,9,9]');",
              "-c", "SET enable_seqscan = off; SELECT embedding FROM items ORDER BY embedding <-> '[8,8,9]' LIMIT 1"],
             {"PGPASSWORD": pg_password}).split("\n")
redis = urllib.parse.urlsplit(os.environ["REDIS_URL"])
redis_password = open(os.environ["REDIS_PASSWORD_FILE"]).read().rstrip("\n")
counter = run(["redis-cli", "-h", redis.hostname, "-p", str(redis.port), "INCR", "starts"], {"REDISCLI_AUTH": redis_password})
with open(os.environ["MARKER"], "a") as f:
    f.write(json.dumps({"rows": rows, "redis": counter, "ext": ext, "vector": vector, "url": os.environ["DATABASE_URL"]}) + "\n")

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def _user():
    """(uid, gid, name) the stack runs as: postgres as root, else this user."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
    else:
        entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid, entry.pw_name


def _descendants(root: int) -> dict[int, str]:
    """pid -> start time (field 22 of /proc/<pid>/stat) of `root` and every process below it."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        starts[int(entry)] = fields[19]
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            out[pid] = starts[pid]
        todo += children.get(pid, [])
    return out


def _alive(pids: dict[int, str]) -> list[int]:
    alive = []
    for pid, start in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].split()[19] == start:  # the same process, not a reused pid
            alive.append(pid)
    return alive


class Stack:
    def __init__(self, root: Path, pc: str, pg_bin: str):
        self.root = root
        self.uid, self.gid, self.user = _user()
        self.env = {
            "PATH": f"{pg_bin}:{Path(pc).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(root / "home"),
            "LC_ALL": "C.UTF-8",
        }
        self.as_user = {"user": self.uid, "group": self.gid, "extra_groups": []} if os.geteuid() == 0 else {}

    def services(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(self.root / "tree/nix/processes/services.sh"), *args],
            cwd=self.root / "project", env=self.env, capture_output=True, text=True, timeout=60, **self.as_user, **kw,
        )  # fmt: skip

    def up(self) -> subprocess.Popen:
        log = open(self.root / "up.log", "ab")
        return subprocess.Popen(
            ["bash", str(self.root / "tree/nix/processes/services.sh"), "up", "-t=false"],
            cwd=self.root / "project", env=self.env, stdout=log, stderr=subprocess.STDOUT, **self.as_user,
        )  # fmt: skip

    def states(self) -> dict[str, dict]:
        proc = self.services("process", "list", "-o", "json")
        if proc.returncode != 0:
            return {}
        try:
            return {p["name"]: p for p in json.loads(proc.stdout)}
        except json.JSONDecodeError:
            return {}

    def wait_healthy(self, server: subprocess.Popen, names: set[str], seconds: float = 120) -> dict[str, dict]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert server.poll() is None, f"process-compose exited:\n{self.log()}"
            states = self.states()
            if names <= set(states) and all(states[n].get("is_ready") == "Ready" for n in names):
                return states
            time.sleep(0.2)
        raise AssertionError(f"not all healthy after {seconds}s: {self.states()}\n{self.log()}")

    def down(self, server: subprocess.Popen, processes: int = 4) -> None:
        tree = _descendants(server.pid)
        assert len(tree) >= processes, f"expected process-compose and {processes - 1} services: {tree}"
        proc = self.services("down")
        assert proc.returncode == 0, proc.stderr
        server.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _alive(tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(tree), f"processes left behind: {_alive(tree)}"

    def stop(self, server: subprocess.Popen) -> None:
        """Clean-up after a test, passed or failed: the stack down, else process-compose killed."""
        if server.poll() is None:
            self.services("down")
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()

    def log(self) -> str:
        text = (self.root / "up.log").read_text(errors="replace")[-4000:]
        for f in sorted((self.root / "state" / "logs").glob("*.log")):
            text += f"\n--- {f.name}\n" + f.read_text(errors="replace")[-2000:]
        return text


def _require_extension(share: Path, name: str, why: str) -> None:
    """The server's extension `name` is installed: the test fails without it in CI (env CI),
    and is skipped with the reason elsewhere."""
    if (share / f"{name}.control").is_file():
        return
    message = f"{share / (name + '.control')} is missing: {why} (tests/install-deps.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def stack_root():
    root = Path(tempfile.mkdtemp(prefix="stackgen-processes-"))  # not tmp_path: the stack's user must reach it
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_stack_runs_restarts_and_stops_cleanly(stack_root):
    pc = require_tool("process-compose", "the processes target is run by the real process-compose")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        require_tool("initdb", "PostgreSQL runs natively under process-compose")
    pg_bin = os.path.dirname(found[-1]) if found else os.path.dirname(shutil.which("initdb"))
    pg_share = Path("/usr/share/postgresql") / Path(pg_bin).parent.name / "extension"
    _require_extension(pg_share, "pg_cron", "postgresql-15-cron: the stack's preloaded extension")
    _require_extension(pg_share, "vector", "pgvector: the stack's vector extension, built by tests/install-deps.sh")
    require_tool("redis-server", "Redis runs natively under process-compose")
    require_tool("redis-cli", "the app and the readiness probe use redis-cli")

    stack = Stack(stack_root, pc, pg_bin)
    for sub in ("home", "project", "secrets", "state"):
        (stack_root / sub).mkdir()
    # Passwords with characters that a careless quoting would break (psql, redis.conf, shell).
    (stack_root / "secrets/pg").write_text("pg 'p\"w\\ $x`\n")
    (stack_root / "secrets/redis").write_text("re\"d\\is $y 'pw'\n")
    (stack_root / "app.py").write_text(APP)
    marker = stack_root / "project" / "marker.jsonl"
    pg_port, redis_port, app_port = free_ports(3)
    spec = {
        "version": 1, "name": "e2e", "targets": ["processes"], "data_dir": str(stack_root / "state"),
        "services": {
            "postgres": {"version": 15, "port": pg_port, "databases": ["appdb"], "extensions": ["pgvector", "pg_cron"],
                         "password_file": str(stack_root / "secrets/pg"), "settings": {"work_mem": "8MB"}},
            "redis": {"port": redis_port, "password_file": str(stack_root / "secrets/redis")},
            "web": {"kind": "app", "command": ["python3", str(stack_root / "app.py"), str(app_port)], "port": app_port,
                    "health": {"http": "/health"}, "uses": ["postgres", "redis"], "env": {"MARKER": str(marker)}},
        },
    }  # fmt: skip
    files = render_tree(validate(parse(json.dumps(spec), "stack.yaml")))
    for f in files:
        path = stack_root / "tree" / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.text)
    if os.geteuid() == 0:
        for path in [stack_root / "home", stack_root / "project", stack_root / "state", *(stack_root / "secrets").iterdir()]:
            os.chown(path, stack.uid, stack.gid)
    for path in (stack_root / "secrets").iterdir():
        path.chmod(0o600)

    names = {"postgres", "redis", "web"}
    started = time.monotonic()
    server = stack.up()
    try:
        states = stack.wait_healthy(server, names)
        healthy_after = time.monotonic() - started
        print(f"\nprocesses e2e: start to all healthy (first start, initdb included): {healthy_after:.2f} s")
        assert all(states[n]["restarts"] == 0 for n in names), states  # in order: the app's first try worked
        first = [json.loads(line) for line in marker.read_text().splitlines()]
        assert first == [{"rows": "1", "redis": "1", "ext": "pg_cron", "vector": ["0.8.1", "1", "[9,9,9]"],
                          "url": f"postgresql://appdb@127.0.0.1:{pg_port}/appdb"}]
        state = stack_root / "state"
        assert (state / "postgres" / "data" / "PG_VERSION").exists() and (state / "redis").is_dir()
        # The password reached redis through its config file, never through a command line.
        for pid in _descendants(server.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            assert b"re\"d\\is" not in cmdline and b"pg 'p" not in cmdline, cmdline
        stack.down(server)
        assert all((state / "logs" / f"{n}.log").stat().st_size > 0 for n in ("postgres", "redis")), "logs per process"

        started = time.monotonic()
        server = stack.up()
        stack.wait_healthy(server, names)
        print(f"processes e2e: start to all healthy (restart, data kept): {time.monotonic() - started:.2f} s")
        second = [json.loads(line) for line in marker.read_text().splitlines()]
        assert [(m["rows"], m["redis"]) for m in second] == [("1", "1"), ("2", "2")]  # the row and the counter survived
        assert second[1]["vector"] == ["0.8.1", "1", "[9,9,9]"]  # the extension and its index after a restart
        stack.down(server)
    finally:
        stack.stop(server)


# A small app: serves /health on its port and appends its name to the marker when it starts.
SERVE = r"""
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", int(sys.argv[2])), Health)
with open(os.environ["MARKER"], "a") as f:
    f.write(sys.argv[1] + "\n")
server.serve_forever()
"""


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def test_a_profiled_service_is_off_until_started(stack_root):
    """A service behind `profiles:` is `disabled` in process-compose.yaml: `up` leaves it off
    (its port stays closed) and starts the service that uses it without waiting for it (compose's
    `required: false`); `process start` on the running stack starts it, and `down` stops both."""
    pc = require_tool("process-compose", "the processes target is run by the real process-compose")
    stack = Stack(stack_root, pc, "/usr/bin")
    for sub in ("home", "project", "state"):
        (stack_root / sub).mkdir()
    (stack_root / "serve.py").write_text(SERVE)
    marker = stack_root / "project" / "marker"
    base_port, extra_port = free_ports(2)

    def app(name, port, **more):
        return {"kind": "app", "command": ["python3", str(stack_root / "serve.py"), name, str(port)], "port": port,
                "health": {"http": "/health"}, "env": {"MARKER": str(marker)}, **more}  # fmt: skip

    spec = {
        "version": 1, "name": "profiles", "targets": ["processes"], "data_dir": str(stack_root / "state"),
        "services": {"base": app("base", base_port, uses=["extra"]), "extra": app("extra", extra_port, profiles=["tools"])},
    }  # fmt: skip
    for f in render_tree(validate(parse(json.dumps(spec), "stack.yaml"))):
        path = stack_root / "tree" / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.text)
    if os.geteuid() == 0:
        for path in (stack_root / "home", stack_root / "project", stack_root / "state"):
            os.chown(path, stack.uid, stack.gid)

    server = stack.up()
    try:
        states = stack.wait_healthy(server, {"base"})
        assert states["extra"]["status"] == "Disabled" and not states["extra"]["is_running"], states["extra"]
        assert states["base"]["restarts"] == 0
        assert marker.read_text() == "base\n" and not _answers(extra_port)

        proc = stack.services("process", "start", "extra")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        states = stack.wait_healthy(server, {"base", "extra"})
        assert states["extra"]["status"] == "Running" and _answers(extra_port)
        assert marker.read_text() == "base\nextra\n"
        stack.down(server, processes=3)
        assert not _answers(base_port) and not _answers(extra_port)
    finally:
        stack.stop(server)
