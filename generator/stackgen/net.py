"""Network primitives for the host commands, and the only place that reads from a peer.

A peer (a mirror, a local service, a download server) is untrusted: it may answer slowly
forever, send an endless body or line, compress a bomb, nest JSON a million levels deep or put
terminal escapes in its text. So every read here is bounded twice:
  - in time: one `Deadline` covers connect, headers and body (and every redirect and step of
    a probe), enforced by cancellation, so bytes trickling in do not keep a read alive;
  - in size: a body is read as a stream and given up after `limit` bytes (after decoding), a
    streamed JSON line after `MAX_LINE` bytes, a TCP answer after a few bytes.
Peer JSON is parsed only after its size and nesting depth are checked (`parse_json`) and read
through `Fields`, which names the peer and the field that was wrong instead of letting a
Python error (`'list' object has no attribute 'get'`) become the message. Peer text is
printed only through `errors.peer_text`. httpx is imported lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

USER_AGENT = "stackgen"
MAX_BODY = 1 << 20  # a whole answer we parse: nix-cache-info, PyPI's page for pip, a JSON document
MAX_LINE = 64 << 10  # one line of a streamed answer (Ollama's progress lines are ~200 bytes)
MAX_JSON_DEPTH = 32  # the deepest peer document we read has 3 levels
MAX_INT_DIGITS = 30  # sizes and counts; Python would spend quadratic time on a 64 KiB integer
MAX_REDIRECTS = 5
CHUNK = 64 << 10  # the most bytes decoded from one piece of a compressed body at a time


class ProbeError(Exception):
    """A probe failed; the message is the reason shown to the user."""


class Deadline:
    """One absolute deadline shared by every step of an operation ("timed out after 5s")."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; asyncio.TimeoutError when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        return left

    async def run(self, awaitable: Awaitable[Any]) -> Any:
        """Await under this deadline: cancelled (asyncio.TimeoutError) when it passes."""
        try:
            left = self.left()
        except asyncio.TimeoutError:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never started: no "was never awaited" warning
            raise
        return await asyncio.wait_for(awaitable, left)


def client(timeout: float, **kwargs: Any):
    """An httpx.AsyncClient; `timeout` bounds each connect, read and write (an idle timeout):
    the total is bounded by a Deadline. It never follows redirects itself (httpx reads a
    redirect's whole body into memory): `stream` follows them with the same bounds. It asks
    for uncompressed bodies; `_decoded` still bounds a peer that compresses anyway."""
    import httpx

    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), headers=headers, follow_redirects=False, **kwargs)


@contextlib.asynccontextmanager
async def stream(http, method: str, url: str, *, redirects: bool = False, **kwargs: Any) -> AsyncIterator[Any]:
    """An open streamed response (body unread), after at most MAX_REDIRECTS redirects when
    `redirects` is set, each left unread. Run it under a Deadline."""
    for _ in range(MAX_REDIRECTS + 1):
        request = http.build_request(method, url, **kwargs)
        response = await http.send(request, stream=True)
        location = response.headers.get("location")
        if not (redirects and response.is_redirect and location):
            try:
                yield response
            finally:
                await response.aclose()
            return
        await response.aclose()
        url = str(response.url.join(location))
        if not url.startswith(("http://", "https://")):
            raise ProbeError(f"sent a redirect to a URL that is not http(s): {_shown(url)}")
        if response.status_code == 303:
            method, kwargs = "GET", {}
    raise ProbeError(f"sent more than {MAX_REDIRECTS} redirects")


@dataclass
class Reply:
    status: int
    url: str  # after redirects
    body: bytes

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).path or "/"

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


async def fetch(http, url: str, deadline: Deadline, *, method: str = "GET", limit: int = MAX_BODY, redirects: bool = False, **kwargs: Any) -> Reply:
    """The whole answer to one request, read within `deadline` (connect, headers, redirects
    and body together) and at most `limit` bytes of body: every HTTP read goes through here
    or through `stream` + `chunks`/`lines`."""

    async def go() -> Reply:
        async with stream(http, method, url, redirects=redirects, **kwargs) as response:
            return Reply(response.status_code, str(response.url), await read_body(response, limit))

    return await deadline.run(go())


async def read_body(response, limit: int) -> bytes:
    """A streamed response's body, refused once it passes `limit` bytes."""
    parts, size = [], 0
    async for piece in chunks(response):
        size += len(piece)
        if size > limit:
            raise ProbeError(f"sent an answer larger than {_size(limit)}")
        parts.append(piece)
    return b"".join(parts)


async def chunks(response) -> AsyncIterator[bytes]:
    """The body's bytes, decoded, in pieces of at most CHUNK bytes (a compressed piece is
    inflated CHUNK bytes at a time, so a gzip bomb never sits in memory)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        async for raw in response.aiter_raw(CHUNK):
            yield raw
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ProbeError(f"sent an answer with Content-Encoding {_shown(encoding)}, which stackgen does not read")
    import zlib

    inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    try:
        async for raw in response.aiter_raw(CHUNK):
            data = raw
            while data:
                piece = inflate.decompress(data, CHUNK)
                data = inflate.unconsumed_tail
                if piece:
                    yield piece
    except zlib.error:
        raise ProbeError(f"sent a corrupt {encoding} body") from None


async def lines(response, max_line: int = MAX_LINE) -> AsyncIterator[bytes]:
    """The body's lines (without the newline), each refused once it passes `max_line` bytes:
    an endless line never grows a buffer. The body as a whole may be as long as it likes."""
    pending = bytearray()
    async for piece in chunks(response):
        start = 0
        while True:
            end = piece.find(b"\n", start)
            if end < 0:
                pending += piece[start:]
                if len(pending) > max_line:
                    raise ProbeError(f"sent a line longer than {_size(max_line)}")
                break
            if len(pending) + end - start > max_line:
                raise ProbeError(f"sent a line longer than {_size(max_line)}")
            yield bytes(pending) + piece[start:end]
            pending.clear()
            start = end + 1
    if pending:
        yield bytes(pending)


async def tcp_exchange(host: str, port: int, payload: bytes, deadline: Deadline, *, limit: int, until: bytes | None = None) -> bytes:
    """Connect, send `payload`, and return the answer: at most `limit` bytes, up to and
    including `until` when given, or what came before the peer closed; all within `deadline`."""

    async def go() -> bytes:
        reader, writer = await asyncio.open_connection(host, port, limit=max(limit, 1024))
        try:
            writer.write(payload)
            await writer.drain()
            data = b""
            while len(data) < limit and not (until and until in data):
                piece = await reader.read(limit - len(data))
                if not piece:
                    break
                data += piece
            return data
        finally:
            writer.transport.abort()  # not close() + wait_closed(): that can wait on the peer

    return await deadline.run(go())


def parse_json(data: bytes | str, what: str) -> Any:
    """A peer's JSON document, parsed only once its size and nesting depth are known to be
    sane. `what` names the peer and the document: "ollama at 127.0.0.1:11434 sent a progress line"."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProbeError(f"{what} that is not UTF-8 text") from None
    if len(data) > MAX_BODY:
        raise ProbeError(f"{what} larger than {_size(MAX_BODY)}")
    if _depth(data) > MAX_JSON_DEPTH:
        raise ProbeError(f"{what} nested more than {MAX_JSON_DEPTH} levels deep")

    def constant(name: str):
        raise ProbeError(f"{what} holding {name}, which is not JSON")

    def integer(text: str) -> int:
        if len(text.lstrip("-")) > MAX_INT_DIGITS:
            raise ProbeError(f"{what} holding an integer of {len(text)} digits")
        return int(text)

    try:
        return json.loads(data, parse_constant=constant, parse_int=integer)
    except ValueError:
        raise ProbeError(f"{what} that is not JSON") from None


# Nesting is measured in linear time, whatever the text: a peer's answer is parsed
# synchronously, where the Deadline cannot cancel it, so one pattern must never be retried
# from every '"' (`"(?:[^"\\]|\\.)*"` is: '"' followed by many '\\"' took 39 s for 80 KiB).
# Each pass below is a left-to-right scan that never backtracks more than once:
#   1. drop every escape pair: a '\\' and the character after it (what a string's escape state
#      tracks; in JSON a backslash outside a string is an error, and json.loads stops there);
#   2. drop every string: with no escapes left a string runs from one '"' to the next (only an
#      unterminated last string scans to the end, once);
#   3. drop everything but brackets.
_ESCAPE_PAIR = re.compile(r"\\.", re.S)
_PLAIN_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings (linear time, no Python recursion)."""
    brackets = _NOT_BRACKET.sub("", _PLAIN_STRING.sub("", _ESCAPE_PAIR.sub("", text)))
    depth = deepest = 0
    for ch in brackets:
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


class Fields:
    """Typed reads of one JSON object a peer sent: a missing or wrong field is a ProbeError
    that says what was wrong ("... whose 'total' is not a finite number")."""

    def __init__(self, value: Any, what: str):
        if not isinstance(value, dict):
            raise ProbeError(f"{what} that is not a JSON object")
        self.value, self.what = value, what

    def __contains__(self, key: str) -> bool:
        return key in self.value

    def _bad(self, key: str, problem: str) -> ProbeError:
        return ProbeError(f"{self.what} whose '{key}' {problem}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.value.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self._bad(key, "is not a string")
        return value

    def count(self, key: str, default: int | None = None, maximum: int = 1 << 60) -> int | None:
        """A non-negative whole number (a size in bytes, a count), at most `maximum`."""
        value = self.value.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self._bad(key, "is not a finite number")
        if value != int(value) or not 0 <= value <= maximum:
            raise self._bad(key, f"is not a whole number from 0 to {maximum}")
        return int(value)

    def objects(self, key: str) -> list["Fields"]:
        """A list of JSON objects (missing: empty)."""
        value = self.value.get(key, [])
        if not isinstance(value, list):
            raise self._bad(key, "is not a list")
        return [Fields(item, f"{self.what} with an entry in '{key}'") for item in value]

    def get(self, key: str, default: Any = None) -> Any:
        return self.value.get(key, default)


def reason(exc: BaseException, timeout: float | None = None) -> str:
    """A short, human reason for a failed request or connection."""
    import httpx

    from .errors import peer_text

    after = f" after {timeout:g}s" if timeout else ""
    for cause in _chain(exc):
        if isinstance(cause, ProbeError):
            return peer_text(str(cause))
        if isinstance(cause, (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException)):
            return f"timed out{after}"
        if isinstance(cause, httpx.HTTPStatusError):
            return f"HTTP {cause.response.status_code}"
        if isinstance(cause, ssl.SSLError):
            return peer_text(f"TLS error: {cause.reason or cause}")
        if isinstance(cause, socket.gaierror):
            return "DNS lookup failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    text = str(exc)
    lowered = text.lower()
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "name resolution" in lowered:
        return "DNS lookup failed"
    if "refused" in lowered:
        return "connection refused"
    # httpx's protocol errors quote what the peer sent (a malformed status line or header)
    return peer_text(text or type(exc).__name__)


def _chain(exc: BaseException):
    """The exception and its causes (httpx wraps httpcore, which wraps the OSError)."""
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        exc = exc.__cause__ or exc.__context__
        seen += 1


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and not n % (1 << 20) else f"{n >> 10} KiB" if not n % 1024 else f"{n} bytes"


def _shown(text: str) -> str:
    from .errors import peer_text

    return peer_text(text)


@dataclass
class Timed:
    ok: bool
    seconds: float
    value: Any = None
    error: str = ""


async def timed(make: Callable[[Deadline], Awaitable[Any]], timeout: float) -> Timed:
    """Run `make(deadline)` under a deadline of `timeout` seconds; never raises."""
    start = time.monotonic()
    deadline = Deadline(timeout)
    try:
        value = await deadline.run(make(deadline))
    except Exception as exc:  # every failure becomes a reason
        return Timed(False, time.monotonic() - start, error=reason(exc, timeout))
    return Timed(True, time.monotonic() - start, value)


def run(coro):
    return asyncio.run(coro)
