"""One health description per service (stackgen.services.health), run in each form a target
runs it: the container healthcheck (by sh inside a minimal image: busybox's wget, or curl, or
bash's /dev/tcp) and the native readiness probe (process-compose runs it with bash), against
real loopback servers. Each form must pass when the service answers and fail when it answers
503 (llama.cpp while its model loads) or nothing listens."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from conftest import require_tool
from httpfakes import free_port, serve, text

from stackgen.services import KINDS
from stackgen.services.base import Endpoint
from stackgen.services.health import Check, in_container, on_host
from stackgen.spec import load_spec

ROUTES = {"GET /ready": text(200, "ok\n"), "GET /loading": text(503, "loading model\n")}
NO_SECRET = lambda option: pytest.fail(f"no secret expected, asked for {option}")  # noqa: E731


@pytest.fixture(scope="module")
def image_path(tmp_path_factory) -> dict[str, str]:
    """PATHs like those of minimal images: busybox only (its wget, no curl), curl only, bash only."""
    busybox = require_tool("busybox", "busybox-static stands in for a minimal image's tools")
    root = tmp_path_factory.mktemp("images")
    paths = {}
    for name, tools in {
        "busybox": {"sh": busybox, "wget": busybox, "grep": busybox, "cat": busybox},
        "curl": {"sh": busybox, "curl": require_tool("curl"), "grep": busybox},
        "bash": {"sh": busybox, "bash": require_tool("bash"), "grep": busybox},
    }.items():
        folder = root / name
        folder.mkdir()
        for tool, target in tools.items():
            (folder / tool).symlink_to(target)
        paths[name] = str(folder)
    return paths


def run_in(path: str, command: str) -> int:
    """The command as a container's healthcheck runs it: /bin/sh -c, with only the image's tools."""
    return subprocess.run([f"{path}/sh", "-c", command], env={"PATH": path}, capture_output=True, timeout=30).returncode


def run_native(command: str) -> int:
    """The command as process-compose runs a readiness probe: bash -c, on the host."""
    return subprocess.run(["bash", "-c", command], env={"PATH": os.environ["PATH"]}, capture_output=True, timeout=30).returncode


@pytest.mark.parametrize("client,image", [("any", "busybox"), ("any", "curl"), ("curl", "curl"), ("bash", "bash")])
def test_http_check_in_a_container(client, image, image_path):
    with serve(ROUTES) as server:
        ready = in_container(Check(http="/ready", image_client=client), server.port, NO_SECRET)
        loading = in_container(Check(http="/loading", image_client=client), server.port, NO_SECRET)
        assert run_in(image_path[image], ready.command) == 0
        assert run_in(image_path[image], loading.command) != 0
        assert ready.probe == ("http", "/ready", server.port)  # what Kubernetes asks itself
    assert run_in(image_path[image], ready.command) != 0  # nothing listens any more


def test_http_check_natively():
    with serve(ROUTES) as server:
        at = Endpoint("127.0.0.1", server.port)
        assert run_native(on_host(Check(http="/ready"), at, NO_SECRET).command) == 0
        assert run_native(on_host(Check(http="/loading"), at, NO_SECRET).command) != 0
    assert run_native(on_host(Check(http="/ready"), at, NO_SECRET).command) != 0


def test_tcp_check_in_a_container_and_natively(image_path):
    with serve(ROUTES) as server:
        port = server.port
        assert run_in(image_path["bash"], in_container(Check(tcp=True), port, NO_SECRET).command) == 0
        assert run_native(on_host(Check(tcp=True), Endpoint("127.0.0.1", port), NO_SECRET).command) == 0
    assert run_in(image_path["bash"], in_container(Check(tcp=True), port, NO_SECRET).command) != 0
    assert run_native(on_host(Check(tcp=True), Endpoint("127.0.0.1", port), NO_SECRET).command) != 0


def test_native_probes_give_slow_services_their_start_time():
    """Twice the container's start period, and at least five minutes, of tries."""
    for startup, seconds in ((30, 300), (60, 300), (300, 600)):
        probe = on_host(Check(http="/", startup=startup), Endpoint("127.0.0.1", 1), NO_SECRET)
        assert probe.failure_threshold * probe.period == seconds
        assert in_container(Check(http="/", startup=startup), 1, NO_SECRET).start_period == f"{startup}s"


REDIS_SPEC = """version: 1
name: h
targets: [compose, processes]
services:
  redis: {{port: {port}, password_file: {secret}}}
"""


def test_redis_ping_with_its_password_file_in_both_places(tmp_path):
    """The kind's one check (redis-cli PING with the password in its environment) passes
    against a real redis-server, as the container (password at its mount) and the native probe
    (password at the spec's path) run it; a wrong password fails both."""
    server = require_tool("redis-server", "Debian's redis-server")
    require_tool("redis-cli")
    port = free_port()
    secret = tmp_path / "redis-password"
    secret.write_text("s3cr$t 'quoted'\n")
    (tmp_path / "stack.yaml").write_text(REDIS_SPEC.format(port=port, secret=f'"{secret}"'))
    spec = load_spec(tmp_path / "stack.yaml", "stack.yaml")
    svc = spec.services["redis"]
    conf = tmp_path / "redis.conf"
    conf.write_text(f'requirepass "s3cr$t \'quoted\'"\nport {port}\nbind 127.0.0.1\nsave ""\nappendonly no\n')
    proc = subprocess.Popen([server, str(conf)], cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True).stdout.strip() not in ("PONG", "NOAUTH Authentication required."):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        kind = KINDS["redis"]
        native = kind.process_probe(spec, svc).command
        mounted = tmp_path / "run-secrets-redis-password"  # where the container would mount it
        shutil.copy(secret, mounted)
        check = kind.health(svc)
        container = in_container(check, port, lambda option: str(mounted)).command
        assert run_native(native) == 0 and run_native(container) == 0
        assert "s3cr" not in native and "s3cr" not in container  # a path, never the value
        mounted.write_text("wrong\n")
        assert run_native(container) != 0
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_every_built_in_kind_describes_its_health_once():
    """Each built-in kind states one Check, and both the container health and the native probe
    are made from it (none is written a second time in the kind's module)."""
    import inspect

    for name, kind in KINDS.items():
        module = inspect.getsource(inspect.getmodule(type(kind)))
        assert "def process_probe" not in module and "Health(" not in module, name


# --- the waits of the NixOS and home-manager units (ExecStartPre=/ExecStartPost=) ------------


def run_wait(script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """As writeShellScript's bash runs it, with curl on PATH (the module's waitPath)."""
    return subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=timeout)


def test_the_wait_returns_once_every_service_answers():
    from stackgen.procplan import Probe
    from stackgen.services.health import wait_script

    state = {"ready": False}

    def health(h):
        h.reply(200 if state["ready"] else 503, "x\n")

    with serve({"GET /health": health}) as server:
        http = on_host(Check(http="/health"), Endpoint("127.0.0.1", server.port), NO_SECRET)
        tcp = on_host(Check(tcp=True), Endpoint("127.0.0.1", server.port), NO_SECRET)
        script = wait_script([("tcp-one", tcp), ("llama", Probe(http.command, period=1, failure_threshold=20))])
        import threading

        timer = threading.Timer(2.5, lambda: state.update(ready=True))  # the model loads
        start = time.monotonic()
        timer.start()
        got = run_wait(script)
        took = time.monotonic() - start
    assert got.returncode == 0, got.stderr
    assert 2.5 <= took < 15


def test_the_wait_gives_up_after_its_budget_naming_the_service():
    from stackgen.procplan import Probe
    from stackgen.services.health import wait_script, wait_seconds

    with serve(ROUTES) as server:
        stuck = on_host(Check(http="/loading"), Endpoint("127.0.0.1", server.port), NO_SECRET)
        waits = [("it's $(id) `x`", Probe(stuck.command, period=1, failure_threshold=3))]
        start = time.monotonic()
        got = run_wait(wait_script(waits))
        took = time.monotonic() - start
    assert got.returncode == 1
    assert got.stderr == "it's $(id) `x` did not become healthy within 3 s\n"  # the name as text, never run
    assert 2 <= took < 10 and wait_seconds(waits) == 3  # bash's SECONDS counts whole seconds
