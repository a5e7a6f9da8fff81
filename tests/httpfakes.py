"""Real HTTP servers on 127.0.0.1 for the host-command tests (http.server in a thread).

`serve(routes)` starts one; `routes` maps "METHOD /path" to a function(handler) that answers
through the handler's helpers (reply, reply_json, stream_lines). Nothing is mocked below
the socket: the commands talk HTTP to these servers exactly as to the real ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

import pytest

Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FakeServer"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.requests.append((self.command, path, self._body()))
        route = self.server.routes.get(f"{self.command} {path}")
        if route is None:
            self.reply(404, "not found\n")
        else:
            route(self)

    do_GET = do_POST = do_HEAD = _dispatch

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def json_body(self) -> dict:
        return json.loads(self.server.requests[-1][2] or b"{}")

    def reply(self, status: int, body: str | bytes, ctype: str = "text/plain") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def reply_json(self, status: int, value: object) -> None:
        self.reply(status, json.dumps(value), "application/json")

    def stream_lines(self, events: Iterable[object], ctype: str = "application/x-ndjson") -> None:
        """Chunked transfer, one JSON object a line, flushed as it goes (as Ollama streams)."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            data = (json.dumps(event) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def flood(self, head: bytes, filler: bytes, *, length: int | None = None, ctype: str = "application/octet-stream", status: int = 200, headers: dict | None = None, interval: float = 0.0) -> None:
        """A hostile answer: `head`, then `filler` again and again until the client goes away
        (or the server stops): chunked, or with a Content-Length of `length` (e.g. 2 GiB) that
        it never reaches. `interval` > 0 trickles it (bytes keep arriving, slowly)."""
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        chunked = length is None
        self.send_header(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(length))))
        self.end_headers()
        frame = (lambda data: f"{len(data):x}\r\n".encode() + data + b"\r\n") if chunked else (lambda data: data)
        try:
            if head:
                self.wfile.write(frame(head))
            while not self.server.stopping.is_set():
                self.wfile.write(frame(filler))
                self.wfile.flush()
                if interval:
                    self.server.stopping.wait(interval)
        except OSError:
            pass  # the client gave up: what a bounded reader does
        self.close_connection = True

    def stall(self, seconds: float) -> None:
        """Hold the request open (a slow server); returns early when the server stops."""
        self.server.stopping.wait(seconds)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route], host: str = "127.0.0.1"):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), Handler)
        self.routes = routes
        self.requests: list[tuple[str, str, bytes]] = []
        self.stopping = threading.Event()

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (a timeout test) is expected here

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.server_address[1]}"

    @property
    def port(self) -> int:
        return self.server_address[1]


@contextlib.contextmanager
def serve(routes: dict[str, Route], host: str = "127.0.0.1"):
    """A FakeServer on `host` ("::1" for IPv6 loopback), serving in a thread."""
    server = FakeServer(routes, host)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports: each socket stays bound until all are chosen (free_port() twice
    in a row may return the same port once the first socket is closed)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def text(status: int, body: str, ctype: str = "text/plain") -> Route:
    return lambda h: h.reply(status, body, ctype)


def js(status: int, value: object) -> Route:
    return lambda h: h.reply_json(status, value)


def slow(seconds: float) -> Route:
    def route(h: Handler) -> None:
        h.stall(seconds)
        if not h.server.stopping.is_set():
            h.reply(200, "too late\n")

    return route


def flood(head: bytes | str, filler: bytes | str, **kwargs) -> Route:
    """A route answering with Handler.flood (an endless or oversized body)."""
    enc = lambda v: v.encode() if isinstance(v, str) else v  # noqa: E731
    return lambda h: h.flood(enc(head), enc(filler), **kwargs)


def gzip_bomb(**kwargs) -> Route:
    """Endless gzip-compressed zeros, sent although the client asked for identity: ~1000:1,
    so each 64 KiB read would inflate to 64 MiB if a reader decompressed it whole."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = packer.compress(bytes(16 << 20)) + packer.flush(zlib.Z_SYNC_FLUSH)  # gzip header + 16 MiB of zeros
    more = packer.compress(bytes(16 << 20)) + packer.flush(zlib.Z_SYNC_FLUSH)  # 16 MiB more; repeatable
    return lambda h: h.flood(head, more, headers={"Content-Encoding": "gzip"}, **kwargs)


@contextlib.contextmanager
def tcp_serve(answer: Callable[[socket.socket], None]):
    """A raw TCP server on 127.0.0.1 (for the Redis and PostgreSQL probes): `answer(conn)`
    runs for each connection in its own thread. Yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                answer(conn)
            except OSError:
                pass

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        listener.close()


@dataclasses.dataclass
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mib: float


def run_measured(args: list[str], *, limit_s: float = 60, env: dict | None = None) -> Measured:
    """`python -m stackgen ARGS` in a child process: its exit code, output, wall time and peak
    resident memory, measured by tests/measure_child.py apart from pytest's own (see there).
    The child's address space is capped at 2 GiB, so a reader that does not bound what it
    reads fails fast instead of filling the machine; `limit_s` kills a child that hangs (and
    fails the test)."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    measure = Path(__file__).with_name("measure_child.py")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, str(measure), str(report), *args], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"stackgen {' '.join(args)} still ran after {limit_s}s") from None
        seconds = time.monotonic() - started
        code, peak_kib = (int(x) for x in report.read_text().split())
        out.seek(0)
        err.seek(0)
        return Measured(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds, peak_kib / 1024)
