"""`stackgen status` against a real Redis and a real PostgreSQL started here from Debian's
packages, and loopback HTTP servers speaking the Ollama, llama.cpp, Qdrant and Open WebUI
health endpoints."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from click.testing import CliRunner

from conftest import require_tool
from httpfakes import free_port, js, serve, text
from stackgen.cli import cli


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port} within {seconds}s")


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def daemon(cmd: list[str], port: int, what: str, folder: str, stop_signal: int = signal.SIGTERM, **as_user):
    """Run a server in the foreground; yield once it listens on `port`; stop it and remove `folder`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **as_user)
    try:
        _wait_for_port(port, proc, what)
        yield port
    finally:
        _stop(proc, stop_signal)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis():
    """A real redis-server on a free loopback port, no persistence."""
    binary = require_tool("redis-server", "status probes a real Redis")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="stackgen-redis-")
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder]
    with daemon(cmd, port, "redis-server", folder) as port:
        yield port


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL cluster (initdb + postgres) on a free loopback port. Root cannot run
    postgres, so as root initdb and postgres run as the 'postgres' user (or 'nobody')."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = found[-1] if found else require_tool("initdb", "status probes a real PostgreSQL")
    server = os.path.join(os.path.dirname(initdb), "postgres")
    data = tempfile.mkdtemp(prefix="stackgen-pg-")
    as_user: dict = {}
    if os.geteuid() == 0:  # run the programs themselves as that user: signals reach postgres
        entry = pwd.getpwnam("postgres" if _user_exists("postgres") else "nobody")
        os.chown(data, entry.pw_uid, entry.pw_gid)
        as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "env": {"PATH": os.defpath, "LC_ALL": "C"}}
    subprocess.run([initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"], check=True, capture_output=True, **as_user)
    port = free_port()
    cmd = [server, "-D", data, "-p", str(port), "-h", "127.0.0.1", "-k", data, "-c", "fsync=off"]
    with daemon(cmd, port, "postgres", data, signal.SIGINT, **as_user) as port:  # SIGINT: PostgreSQL's fast shutdown
        yield port


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ollama_routes(models=("llama3.2:3b", "qwen2.5:7b")):
    return {
        "GET /api/version": js(200, {"version": "0.6.2"}),
        "GET /api/tags": js(200, {"models": [{"name": m, "model": m, "size": 2019393189} for m in models]}),
    }


@pytest.fixture
def http_services():
    """One server per HTTP service, as the real ones answer when healthy."""
    with serve(ollama_routes()) as ollama, serve({"GET /health": js(200, {"status": "ok"})}) as llama, serve(
        {"GET /readyz": text(200, "all shards are ready")}
    ) as qdrant, serve({"GET /health": js(200, {"status": True})}) as webui:
        yield {"ollama": ollama.port, "llama-cpp": llama.port, "qdrant": qdrant.port, "open-webui": webui.port}


def write_spec(path, ports: dict, models=("llama3.2:3b", "qwen2.5:7b")):
    lines = ["version: 1", "name: status-test", "services:"]
    extra = {
        "ollama": f"models: {json.dumps(list(models))}",
        "llama-cpp": "model: /var/lib/llama-cpp/models/m.gguf",
        "qdrant": f"grpc_port: {free_port()}",
    }
    for kind, port in ports.items():
        lines.append(f"  {kind}: {{port: {port}{', ' + extra[kind] if kind in extra else ''}}}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, ["status", *args])


def test_all_up(tmp_path, redis, postgres, http_services):
    spec = write_spec(tmp_path / "stack.yaml", {**http_services, "postgres": postgres, "redis": redis})
    result = run(spec)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert list(rows) == ["ollama", "llama-cpp", "postgres", "redis", "qdrant", "open-webui"]  # spec order
    assert f"127.0.0.1:{postgres}" in rows["postgres"] and "up     PostgreSQL (" in rows["postgres"]
    assert "up     Redis (PONG)" in rows["redis"]
    assert "up     ollama 0.6.2; models 2/2 present" in rows["ollama"]
    assert "up     all shards are ready" in rows["qdrant"]

    data = json.loads(run(spec, "--json").output)
    assert data["all_up"] is True and [s["state"] for s in data["services"]] == ["up"] * 6


def test_down_missing_and_wrong_protocol(tmp_path, redis, postgres):
    with serve(ollama_routes(["llama3.2:3b"])) as ollama:
        spec = write_spec(
            tmp_path / "stack.yaml",
            # postgres is pointed at Redis and Redis at PostgreSQL: each must notice
            {"ollama": ollama.port, "llama-cpp": free_port(), "postgres": redis, "redis": postgres},
            models=("llama3.2:3b", "qwen2.5"),
        )
        result = run(spec, "--json", "--timeout", "1")
    assert result.exit_code == 1
    states = {s["kind"]: (s["state"], s["detail"]) for s in json.loads(result.output)["services"]}
    assert states["ollama"] == ("incomplete", "ollama 0.6.2; models 1/2 present (missing qwen2.5: run 'stackgen models pull')")
    assert states["llama-cpp"] == ("down", "connection refused")
    assert states["postgres"] == ("down", "timed out after 1s")  # Redis waits for a line that never comes
    assert states["redis"][0] == "down"  # PostgreSQL closes or answers with an error packet, never +PONG


def test_redis_with_a_password_is_up(tmp_path, redis):
    with socket.create_connection(("127.0.0.1", redis)) as conn:
        conn.sendall(b"CONFIG SET requirepass s3cret\r\n")
        assert conn.recv(64) == b"+OK\r\n"
    result = run(write_spec(tmp_path / "stack.yaml", {"redis": redis}))
    assert result.exit_code == 0, result.output
    assert "up     Redis (password required)" in result.output


def test_wait_until_the_model_has_loaded(tmp_path):
    answers = iter([503, 503])

    def health(h):
        code = next(answers, 200)
        h.reply_json(code, {"status": "ok"} if code == 200 else {"error": {"code": 503, "message": "Loading model"}})

    with serve({"GET /health": health}) as llama:
        spec = write_spec(tmp_path / "stack.yaml", {"llama-cpp": llama.port})
        assert run(spec).exit_code == 1  # first answer: still loading
        started = time.monotonic()
        result = run(spec, "--wait", "10")
    assert result.exit_code == 0, result.output
    assert "up     healthy" in result.output
    assert time.monotonic() - started < 5


def test_wait_gives_up(tmp_path):
    with serve({"GET /health": js(503, {"error": {"message": "Loading model"}})}) as llama:
        spec = write_spec(tmp_path / "stack.yaml", {"llama-cpp": llama.port})
        started = time.monotonic()
        result = run(spec, "--wait", "1.5")
    assert result.exit_code == 1
    assert "starting  loading the model" in result.output
    assert 1.5 <= time.monotonic() - started < 4


def test_bad_http_answers(tmp_path):
    with serve({"GET /api/version": text(500, "boom")}) as ollama, serve({"GET /health": js(200, {"status": False})}) as webui:
        spec = write_spec(tmp_path / "stack.yaml", {"ollama": ollama.port, "open-webui": webui.port})
        data = json.loads(run(spec, "--json").output)
    details = {s["kind"]: s["detail"] for s in data["services"]}
    assert details == {"ollama": "GET /api/version: HTTP 500", "open-webui": 'GET /health: {"status": false}'}
    assert data["all_up"] is False


def test_spec_errors_are_exit_1(tmp_path):
    (tmp_path / "stack.yaml").write_text("version: 1\nname: x\nservices:\n  redis: {port: 99999}\n")
    result = run(str(tmp_path / "stack.yaml"))
    assert result.exit_code == 1 and "stack.yaml:4:" in result.stderr
