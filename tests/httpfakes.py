"""Real HTTP servers on 127.0.0.1 for the host-command tests (http.server in a thread).

`serve(routes)` starts one; `routes` maps "METHOD /path" to a function(handler) that answers
through the handler's helpers (reply, reply_json, stream_lines). Nothing is mocked below
the socket: the commands talk HTTP to these servers exactly as to the real ones.
"""

from __future__ import annotations

import contextlib
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

    def stall(self, seconds: float) -> None:
        """Hold the request open (a slow server); returns early when the server stops."""
        self.server.stopping.wait(seconds)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes = routes
        self.requests: list[tuple[str, str, bytes]] = []
        self.stopping = threading.Event()

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up (a timeout test) is expected here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def port(self) -> int:
        return self.server_address[1]


@contextlib.contextmanager
def serve(routes: dict[str, Route]):
    server = FakeServer(routes)
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
