"""Network primitives for the host commands: an httpx client, bounded requests, TCP greetings,
and short human reasons for every way a request fails. httpx is imported lazily.

Every operation here has a deadline: a probe answers "timed out after 3.0s" rather than hang.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

USER_AGENT = "stackgen"


class ProbeError(Exception):
    """A probe failed; the message is the reason shown to the user."""


def client(timeout: float, **kwargs: Any):
    """An httpx.AsyncClient with one timeout for connect, read, write and pool."""
    import httpx

    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), headers={"User-Agent": USER_AGENT}, **kwargs)


def sync_client(timeout: float, **kwargs: Any):
    import httpx

    return httpx.Client(timeout=httpx.Timeout(timeout), headers={"User-Agent": USER_AGENT}, **kwargs)


def reason(exc: BaseException, timeout: float | None = None) -> str:
    """A short, human reason for a failed request or connection."""
    import httpx

    after = f" after {timeout:g}s" if timeout else ""
    for cause in _chain(exc):
        if isinstance(cause, ProbeError):
            return str(cause)
        if isinstance(cause, (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException)):
            return f"timed out{after}"
        if isinstance(cause, httpx.HTTPStatusError):
            return f"HTTP {cause.response.status_code}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
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
    return text or type(exc).__name__


def _chain(exc: BaseException):
    """The exception and its causes (httpx wraps httpcore, which wraps the OSError)."""
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        exc = exc.__cause__ or exc.__context__
        seen += 1


@dataclass
class Timed:
    ok: bool
    seconds: float
    value: Any = None
    error: str = ""


async def timed(make: Callable[[], Awaitable[Any]], timeout: float) -> Timed:
    """Run `make()` under a hard deadline; never raises."""
    start = time.monotonic()
    try:
        value = await asyncio.wait_for(make(), timeout)
    except Exception as exc:  # every failure becomes a reason
        return Timed(False, time.monotonic() - start, error=reason(exc, timeout))
    return Timed(True, time.monotonic() - start, value)


async def get_text(http, url: str, *, expect: int = 200) -> str:
    response = await http.get(url)
    if response.status_code != expect:
        raise ProbeError(f"HTTP {response.status_code}")
    return response.text


async def tcp_exchange(host: str, port: int, payload: bytes, nbytes: int) -> bytes:
    """Connect, send `payload`, return up to `nbytes` of the answer (b'' if the peer closes)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        await writer.drain()
        return await reader.read(nbytes)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


def run(coro):
    return asyncio.run(coro)
