"""End to end with real podman: render a stack, `podman-compose up -d`, wait for the
healthchecks, reach the services on their loopback ports, tear everything down.

No registry is reachable, so the test builds its images from local files (`podman import`):
- an "ollama" and an "open-webui" made of busybox, which behave like the real images as far
  as the rendered file uses them: the entrypoint `ollama serve`, the healthchecks `ollama list`
  and `curl -fsS .../health`. The fake open-webui fetches OLLAMA_BASE_URL once at start and
  exits if it cannot, so it only comes up when ollama already answers by its service name.
- a "redis" made of Debian's redis-server and redis-cli (package redis-tools) and their libraries,
  with the same `docker-entrypoint.sh` contract as the real image; its password comes from the
  spec's password_file through a compose secret.

Podman runs rootful with a private store and configuration (nothing in /etc/containers or
/var/lib/containers is touched), the runc runtime (crun fails on hybrid cgroup hosts) and
ulimits within the host's hard limits. podman 4.3 has no `wait --condition=healthy`, so
podman-compose ignores `condition: service_healthy` there: the test starts the dependencies,
runs their healthchecks until they pass (as systemd timers would), then starts the rest.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import render_text, require_tool
from httpfakes import free_ports

pytestmark = pytest.mark.podman

PROJECT = "sge2e"
OLLAMA_TAGS = '{"models":[{"name":"e2e:latest"}]}'

OLLAMA = """#!/bin/sh
# stands in for /bin/ollama: `serve` answers the API, `list` asks it (as the real CLI does)
case "$1" in
  serve) exec httpd -f -p 11434 -h /www ;;
  list) wget -q -O- http://127.0.0.1:11434/api/tags ;;
  *) echo "fake ollama: $1 unsupported" >&2; exit 2 ;;
esac
"""
CURL = """#!/bin/sh
# `curl --globoff -fsS URL` as the healthchecks use it
for url; do :; done
exec wget -q -O- "$url"
"""
WEBUI = """#!/bin/sh
# stands in for open-webui's start.sh: needs ollama at OLLAMA_BASE_URL before it serves
wget -q -O /www/ollama.txt "$OLLAMA_BASE_URL/api/tags" || { echo "ollama unreachable at $OLLAMA_BASE_URL" >&2; exit 1; }
echo '{"status":true}' > /www/health
exec httpd -f -p 8080 -h /www
"""


class Podman:
    def __init__(self, state: Path):
        conf, storage = state / "containers.conf", state / "storage.conf"
        conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
            "[engine]\n"
            'runtime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            "[network]\n"
            f'network_backend = "netavark"\nnetwork_config_dir = "{state}/networks"\n'
        )
        storage.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{state}/root"\nrunroot = "{state}/run"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}
        self.podman = shutil.which("podman")

    def __call__(self, *args: str, check: bool = True, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(args, capture_output=True, text=True, env=self.env, cwd=cwd, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def import_image(self, rootfs: Path, name: str, *changes: str) -> None:
        tar = subprocess.run(["tar", "-C", str(rootfs), "-cf", "-", "."], capture_output=True, check=True).stdout
        args = [self.podman, "import", "-q"]
        for change in ("ENV PATH=/bin", *changes):
            args += ["--change", change]
        proc = subprocess.run([*args, "-", name], input=tar, capture_output=True, env=self.env, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()

    def wait_healthy(self, container: str, timeout: float = 30) -> None:
        """Run the container's healthcheck until it passes (no systemd timers run it here)."""
        end = time.monotonic() + timeout
        while True:
            running = self(self.podman, "inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip()
            proc = self(self.podman, "healthcheck", "run", container, check=False, timeout=15) if running == "true" else None
            if proc is not None and proc.returncode == 0:
                return
            if running != "true" or time.monotonic() > end:
                logs = self(self.podman, "logs", container, check=False)
                why = f"exited ({running or 'missing'})" if running != "true" else f"not healthy after {timeout}s"
                raise AssertionError(f"{container} {why}:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.3)


def busybox_rootfs(root: Path, busybox: str) -> Path:
    for d in ("bin", "etc", "tmp", "www/api", "data"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in ("sh", "httpd", "wget", "cat", "grep", "echo", "sleep", "ls"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def build_images(podman: Podman, work: Path) -> dict[str, str]:
    busybox = require_tool("busybox", "a static busybox is the base of the test images (busybox-static)")
    rdb = require_tool("redis-check-rdb", "Debian's redis-server binary (redis-tools) makes the redis test image")
    cli = require_tool("redis-cli")

    web = busybox_rootfs(work / "web", busybox)
    script(web / "bin" / "ollama", OLLAMA)
    script(web / "bin" / "curl", CURL)
    script(web / "bin" / "start-webui", WEBUI)
    (web / "www" / "api" / "tags").write_text(OLLAMA_TAGS)
    images = {"ollama": "localhost/sg-e2e-ollama:1", "open-webui": "localhost/sg-e2e-webui:1", "redis": "localhost/sg-e2e-redis:1"}
    podman.import_image(web, images["ollama"], 'ENTRYPOINT ["/bin/ollama"]', 'CMD ["serve"]')
    podman.import_image(web, images["open-webui"], 'CMD ["/bin/start-webui"]')

    red = busybox_rootfs(work / "redis", busybox)
    shutil.copy(rdb, red / "bin" / "redis-server")  # Debian's redis-server is this binary under another name
    shutil.copy(cli, red / "bin" / "redis-cli")
    libs = {w for binary in (rdb, cli) for w in subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout.split()}
    for lib in sorted(w for w in libs if w.startswith("/")):
        target = red / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(lib), target)
    script(red / "bin" / "docker-entrypoint.sh", '#!/bin/sh\nexec "$@"\n')
    podman.import_image(red, images["redis"], "WORKDIR /data", 'ENTRYPOINT ["docker-entrypoint.sh"]', 'CMD ["redis-server"]')
    return images


def redis_reply(port: int, *commands: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(c.encode() + b"\r\n" for c in commands))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture
def podman_env():
    require_tool("podman", "the end-to-end test runs real containers")
    compose = require_tool("podman-compose", "pip install podman-compose (the test extra)")
    require_tool("runc", "crun cannot run on hybrid cgroup hosts; the test pins runc")
    if os.geteuid() != 0:
        pytest.skip("the end-to-end test runs rootful podman (private store, netavark); run it as root")
    # A short path: conmon's attach socket lives under the runroot and must fit in sun_path.
    state = Path(tempfile.mkdtemp(prefix="sg-e2e-", dir="/var/tmp"))
    podman = Podman(state)
    try:
        yield podman, compose, state
    finally:
        podman(podman.podman, "system", "reset", "-f", check=False, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def test_compose_stack_comes_up_healthy_and_answers(podman_env, tmp_path):
    podman, compose, state = podman_env
    images = build_images(podman, state / "rootfs")
    probe = podman(podman.podman, "run", "--rm", "--entrypoint", "/bin/sh", images["ollama"], "-c", "echo ok", check=False)
    if probe.returncode != 0 or probe.stdout.strip() != "ok":
        pytest.skip(f"podman is installed but cannot run containers here: {probe.stderr.strip()[-500:]}")

    ports = dict(zip(("ollama", "redis", "open-webui"), free_ports(3)))
    secret = tmp_path / "redis-password"
    secret.write_text("s3cret$with%chars")
    spec = f"""version: 1
name: {PROJECT}
targets: [compose]
services:
  ollama: {{port: {ports['ollama']}, image: {images['ollama']}}}
  redis: {{port: {ports['redis']}, image: {images['redis']}, password_file: {secret}}}
  open-webui: {{port: {ports['open-webui']}, image: {images['open-webui']}}}
"""
    tree = tmp_path / "stack"
    files = render_text(spec, tree)
    webui = yaml.safe_load(files["compose.yaml"])["services"]["open-webui"]
    assert webui["depends_on"] == {"ollama": {"condition": "service_healthy"}}

    up = [compose, "-f", "compose.yaml"]
    try:
        t0 = time.monotonic()
        podman(*up, "up", "-d", "ollama", "redis", cwd=tree)
        podman.wait_healthy(f"{PROJECT}_ollama_1")
        podman.wait_healthy(f"{PROJECT}_redis_1")
        podman(*up, "up", "-d", cwd=tree)
        podman.wait_healthy(f"{PROJECT}_open-webui_1")
        elapsed = time.monotonic() - t0

        assert http_get(ports["ollama"], "/api/tags") == OLLAMA_TAGS
        # open-webui reached ollama by its service name once ollama was healthy
        assert http_get(ports["open-webui"], "/ollama.txt") == OLLAMA_TAGS
        assert http_get(ports["open-webui"], "/health").strip() == '{"status":true}'
        # redis took its password from the secret file: refused without it, PONG with it
        assert b"NOAUTH" in redis_reply(ports["redis"], "PING")
        assert redis_reply(ports["redis"], "AUTH s3cret$with%chars", "PING") == b"+OK\r\n+PONG\r\n"
        status = podman(podman.podman, "inspect", "-f", "{{.State.Health.Status}}", f"{PROJECT}_open-webui_1").stdout.strip()
        assert status == "healthy"
        assert elapsed < 60, f"bringing the stack up took {elapsed:.0f}s"
    finally:
        podman(*up, "down", "-v", "-t", "0", cwd=tree, check=False, timeout=120)
    left = podman(podman.podman, "ps", "-aq", "--filter", f"label=io.podman.compose.project={PROJECT}").stdout.strip()
    assert not left, "podman-compose down left containers behind"


APP = """#!/bin/sh
# the user's app: it needs Redis at REDIS_URL (password from REDIS_PASSWORD_FILE) before it serves
hostport=${REDIS_URL#redis://}
host=${hostport%:*}
port=${hostport##*:}
printf 'AUTH %s\\r\\nPING\\r\\nQUIT\\r\\n' "$(cat "$REDIS_PASSWORD_FILE")" | nc -w 5 "$host" "$port" > /www/redis.txt \\
  || { echo "redis unreachable at $REDIS_URL" >&2; exit 1; }
grep -q PONG /www/redis.txt || { echo "no PONG from $REDIS_URL:" >&2; cat /www/redis.txt >&2; exit 1; }
echo "$REDIS_URL" > /www/url.txt
echo ok > /www/health
exec httpd -f -p 8000 -h /www
"""


def test_app_starts_after_redis_is_healthy_and_reaches_it_through_redis_url(podman_env, tmp_path):
    """kind: app with uses: [redis]: compose waits for redis' healthcheck (service_healthy),
    passes REDIS_URL (redis by its service name) and REDIS_PASSWORD_FILE (the secret mounted
    into the app), and the app's own health: {http: /health} becomes its healthcheck."""
    podman, compose, state = podman_env
    images = build_images(podman, state / "rootfs")
    app = busybox_rootfs(state / "rootfs" / "app", shutil.which("busybox"))
    for applet in ("nc", "printf"):
        (app / "bin" / applet).symlink_to("busybox")
    script(app / "bin" / "app", APP)
    podman.import_image(app, "localhost/sg-e2e-app:1", 'CMD ["/bin/app"]')
    probe = podman(podman.podman, "run", "--rm", "localhost/sg-e2e-app:1", "echo", "ok", check=False)
    if probe.returncode != 0 or probe.stdout.strip() != "ok":
        pytest.skip(f"podman is installed but cannot run containers here: {probe.stderr.strip()[-500:]}")

    ports = dict(zip(("redis", "api"), free_ports(2)))
    secret = tmp_path / "redis-password"
    secret.write_text("s3cret$with%chars")
    spec = f"""version: 1
name: {PROJECT}
targets: [compose]
services:
  redis: {{port: {ports['redis']}, image: {images['redis']}, password_file: {secret}}}
  api:
    kind: app
    image: localhost/sg-e2e-app:1
    port: {ports['api']}
    container_port: 8000
    health: {{http: /health}}
    uses: [redis]
"""
    tree = tmp_path / "stack"
    files = render_text(spec, tree)
    api = yaml.safe_load(files["compose.yaml"])["services"]["api"]
    assert api["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert api["environment"] == {"REDIS_URL": "redis://redis:6379", "REDIS_PASSWORD_FILE": "/run/secrets/redis-password"}
    assert api["secrets"] == ["redis-password"]

    up = [compose, "-f", "compose.yaml"]
    try:
        # podman 4.3 cannot wait for service_healthy: run redis' healthcheck as systemd would,
        # then start the rest (the app exits at once when redis does not answer)
        podman(*up, "up", "-d", "redis", cwd=tree)
        podman.wait_healthy(f"{PROJECT}_redis_1")
        podman(*up, "up", "-d", cwd=tree)
        podman.wait_healthy(f"{PROJECT}_api_1")
        assert http_get(ports["api"], "/url.txt").strip() == "redis://redis:6379"
        assert "+PONG" in http_get(ports["api"], "/redis.txt")
    finally:
        podman(*up, "down", "-v", "-t", "0", cwd=tree, check=False, timeout=120)
