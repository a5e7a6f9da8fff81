"""`stackgen models pull`: pull the declared Ollama models and fetch llama.cpp's GGUF file.

Ollama: `POST /api/pull` streams JSON lines ({"status": "pulling <digest>", "digest", "total",
"completed"} ... {"status": "success"}, or {"error": ...}); models that /api/tags already lists
are left alone. GGUF: downloaded next to `model` as a hidden .part file, checked against
`model_sha256` when given, then renamed into place, so `model` is never a partial file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click

from . import base_url, human, load
from .status import full_name, model_names

CHUNK = 1024 * 1024


@click.group()
def models() -> None:
    """Model files for the declared services."""


@models.command("pull")
@click.argument("spec", default="stack.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--timeout", type=click.FloatRange(1, 7 * 86400), default=6 * 3600, show_default=True, help="Seconds the whole command may take, however fast data arrives.")
@click.option("--idle-timeout", type=click.FloatRange(1, 3600), default=60, show_default=True, help="Seconds without any data before a pull or download is given up.")
def pull(spec: Path, timeout: float, idle_timeout: float) -> None:
    """Pull SPEC's Ollama models and download llama.cpp's model_url. Exit 1 if any fails."""
    from .. import net

    loaded = load(spec)
    ollama = loaded.first("ollama")
    llama = loaded.first("llama-cpp")
    if not (ollama is not None and ollama.models) and not (llama is not None and llama.model_url):
        click.echo(f"{spec}: nothing to pull (no ollama models, no llama-cpp model_url)")
        return
    limits = Limits(net.Deadline(timeout), idle_timeout, sys.stdout.isatty())
    outcomes = net.run(_pull_all(ollama, llama, limits))
    counts = {k: outcomes.count(k) for k in ("pulled", "present", "failed")}
    click.echo(f"{counts['pulled']} pulled, {counts['present']} already present, {counts['failed']} failed")
    if counts["failed"]:
        raise SystemExit(1)


@dataclass
class Limits:
    deadline: "net.Deadline"  # the whole command (--timeout)
    idle: float  # each read, connect and write (--idle-timeout)
    tty: bool

    def why(self, exc: BaseException) -> str:
        """The reason a step failed; the two timeouts are told apart."""
        import asyncio

        from .. import net

        if isinstance(exc, asyncio.TimeoutError):
            return f"gave up: the whole pull may take at most {self.deadline.seconds:g}s (--timeout)"
        if "Timeout" in type(exc).__name__:  # httpx's connect/read/write timeouts
            return f"no data for {self.idle:g}s (--idle-timeout)"
        return net.reason(exc)


async def _pull_all(ollama, llama, limits: Limits) -> list[str]:
    from .. import net

    outcomes: list[str] = []
    if ollama is not None and ollama.models:
        async with net.client(limits.idle, trust_env=False) as http:  # the local Ollama: no proxy
            outcomes += await pull_ollama(http, base_url(ollama), list(ollama.models), limits)
    if llama is not None and llama.model_url:
        async with net.client(limits.idle) as http:
            outcomes.append(await fetch_gguf(http, llama.model_url, Path(llama.model), llama.model_sha256, limits))
    return outcomes


async def pull_ollama(http, base: str, wanted: list[str], limits: Limits) -> list[str]:
    from .. import net

    peer = f"ollama at {base.removeprefix('http://')}"
    try:
        reply = await net.fetch(http, base + "/api/tags", limits.deadline)
        if reply.status != 200:
            raise net.ProbeError(f"GET /api/tags: HTTP {reply.status}")
        what = f"{peer} sent a GET /api/tags answer"
        present = model_names(net.Fields(net.parse_json(reply.body, what), what))
    except Exception as exc:  # unreachable, not Ollama: every model fails with the reason
        click.echo(f"ollama at {base} is not usable: {limits.why(exc)}; start it (see 'stackgen status')", err=True)
        return ["failed"] * len(wanted)
    outcomes = []
    for model in wanted:
        if full_name(model) in present:
            click.echo(f"{model}: already present")
            outcomes.append("present")
            continue
        bar = Progress(model, limits.tty)
        try:
            error = await limits.deadline.run(_pull_one(http, base, peer, model, bar))
        except Exception as exc:
            error = limits.why(exc)
        bar.finish()
        if error:
            click.echo(f"{model}: FAILED: {error}", err=True)
        outcomes.append("failed" if error else "pulled")
    return outcomes


async def _pull_one(http, base: str, peer: str, model: str, bar: "Progress") -> str | None:
    """Stream one pull; returns the failure reason or None. Each line is bounded in size and
    checked for the type of every field used; all text shown is escaped (peer_text)."""
    from .. import net
    from ..errors import peer_text

    layers: dict[str, tuple[int, int]] = {}
    async with net.stream(http, "POST", base + "/api/pull", json={"model": model, "stream": True}) as response:
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {_error_text(await net.read_body(response, MAX_ERROR_BODY), peer)}"
        what = f"{peer} sent a progress line"
        try:
            async for line in net.lines(response):
                if not line.strip():
                    continue
                event = net.Fields(net.parse_json(line, what), what)
                if "error" in event:
                    return peer_text(event.text("error") or "an empty error")
                status = peer_text(event.text("status", "") or "", 100)
                digest, total = event.text("digest"), event.count("total")
                if digest and total:
                    layers[digest[:100]] = (min(event.count("completed", 0) or 0, total), total)
                    done = sum(c for c, _ in layers.values())
                    total_all = sum(t for _, t in layers.values())
                    bar.update(done, total_all, f"{status} ({human(total)})")
                elif status != "success":
                    bar.note(status)
                if status == "success":
                    total_all = sum(t for _, t in layers.values())
                    bar.finish(f"pulled ({human(total_all)})" if total_all else "pulled")
                    return None
        except net.ProbeError as exc:
            message = str(exc)
            raise net.ProbeError(message if message.startswith(peer) else f"{peer} {message}") from None
    return "the stream ended before Ollama reported success"


MAX_ERROR_BODY = 64 << 10


def _error_text(body: bytes, peer: str) -> str:
    """Ollama's {"error": "..."} answer, or the start of whatever else it sent, escaped."""
    from .. import net
    from ..errors import peer_text

    try:
        message = net.Fields(net.parse_json(body, "error"), "error").text("error")
    except net.ProbeError:
        message = None
    text = message if message is not None else body.decode("utf-8", errors="replace").strip()
    return peer_text(text) or "no message"


MAX_MODEL_FILE = 1 << 40  # 1 TiB: a larger "model" is a server that never stops


async def fetch_gguf(http, url: str, target: Path, sha256: str | None, limits: Limits) -> str:
    label = target.name
    try:
        if target.exists():
            return await _check_present(target, label, sha256, limits)
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_parts(target)
        part, out = new_part(target)
    except OSError as exc:
        click.echo(f"{label}: FAILED: {exc.filename or target}: {exc.strerror or exc}", err=True)
        return "failed"
    bar = Progress(label, limits.tty)
    try:
        with out:  # holds the .part file's lock: a concurrent pull's sweep leaves it alone
            done, got = await limits.deadline.run(_download(http, url, out, bar, limits))
            if sha256 is not None and got != sha256:
                raise _Failed(f"sha256 mismatch: the download is {got}, the spec says {sha256}")
            os.chmod(part, 0o644)
            os.replace(part, target)
            part = None
    except Exception as exc:
        bar.finish()
        why = str(exc) if isinstance(exc, _Failed) else limits.why(exc)
        click.echo(f"{label}: FAILED: {why}", err=True)
        return "failed"
    finally:
        if part is not None:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
    bar.finish(f"saved {target} ({human(done)}, sha256 {'ok' if sha256 else got})")
    if sha256 is None:
        click.echo(f"  pin it: add 'model_sha256: {got}' to services.llama-cpp")
    return "pulled"


class _Failed(Exception):
    """A download that arrived but is wrong (its checksum)."""


class _Stopped(Exception):
    """A hash given up because its deadline passed."""


async def _check_present(target: Path, label: str, sha256: str | None, limits: Limits) -> str:
    import asyncio

    from ..safeio import NotRegularFile

    try:
        got = await _sha256_within(target, limits.deadline) if sha256 is not None else _require_regular(target)
    except asyncio.TimeoutError as exc:  # before OSError: since Python 3.11 it is the builtin TimeoutError, an OSError
        click.echo(f"{label}: FAILED: checking the sha256 of {target}: {limits.why(exc)}", err=True)
        return "failed"
    except NotRegularFile as exc:
        click.echo(f"{label}: FAILED: {target} is {exc.kind}, not a regular file; a model must be a file", err=True)
        return "failed"
    except OSError as exc:
        click.echo(f"{label}: FAILED: cannot read {target}: {exc.strerror or exc}", err=True)
        return "failed"
    if sha256 is None:
        click.echo(f"{label}: already present at {target}")
        return "present"
    if got == sha256:
        click.echo(f"{label}: already present at {target} (sha256 ok)")
        return "present"
    click.echo(f"{label}: FAILED: {target} exists but its sha256 is {got}, not {sha256}; remove it to download again", err=True)
    return "failed"


async def _download(http, url: str, out: IO[bytes], bar: "Progress", limits: Limits) -> tuple[int, str]:
    """Stream `url` into `out`; (bytes, sha256). Never more than the announced length."""
    from .. import net

    digest = hashlib.sha256()
    async with net.stream(http, "GET", url, redirects=True) as response:
        if response.status_code != 200:
            raise net.ProbeError(f"GET {url}: HTTP {response.status_code}")
        announced = response.headers.get("content-length", "")
        total = int(announced) if announced.isdigit() and len(announced) < 20 else 0
        cap = total or MAX_MODEL_FILE
        done = 0
        note = f"downloading {url}" + (f" ({human(total)})" if total else "")
        async for chunk in net.chunks(response):
            done += len(chunk)
            if done > cap:
                raise net.ProbeError(f"the server sent more than {'the announced ' if total else ''}{human(cap)}")
            out.write(chunk)
            digest.update(chunk)
            bar.update(done, total, note)
    if total and done != total:
        raise net.ProbeError(f"short download: {done} of {total} bytes")
    out.flush()
    os.fsync(out.fileno())
    return done, digest.hexdigest()


PART_SUFFIX = ".part"


def _part_prefix(target: Path) -> str:
    return f".{target.name}."


def new_part(target: Path) -> tuple[Path, IO[bytes]]:
    """A new hidden .part file beside `target`, open and locked (flock) for as long as this
    pull runs: the lock is how another pull tells a live download from a killed one's."""
    while True:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=_part_prefix(target), suffix=PART_SUFFIX)
        out = os.fdopen(fd, "wb")
        fcntl.flock(out.fileno(), fcntl.LOCK_EX)  # waits while a sweep holds it (to delete it)
        if _same_file(name, out.fileno()):
            return Path(name), out
        out.close()  # a sweep took it in the instant before our lock: take another name


def sweep_parts(target: Path) -> list[Path]:
    """Remove the .part files of `target` that no live pull holds: those a killed pull left.
    One a concurrent pull is writing is locked by it and left alone."""
    removed = []
    for path in target.parent.glob(_part_prefix(target).replace("[", "[[]") + "*" + PART_SUFFIX):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # gone already, a symlink, unreadable: not ours to remove
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # locked: a live pull is writing it
            continue
        try:
            if _same_file(str(path), fd):  # not renamed into place since we opened it
                path.unlink()
                removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _same_file(name: str, fd: int) -> bool:
    try:
        here, held = os.stat(name, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _require_regular(path: Path) -> None:
    """NotRegularFile unless `path` (or what its symbolic link leads to) is a regular file."""
    from ..safeio import open_regular

    fd, _ = open_regular(path, follow=True)  # O_NONBLOCK: a FIFO does not wait for a writer
    os.close(fd)


async def _sha256_within(path: Path, deadline: "net.Deadline") -> str:
    """The sha256 of the regular file `path`, computed in a worker thread under `deadline`: a
    large file (or a slow disk) cannot hold the command past --timeout. When the deadline
    passes, the thread is told to stop after its current chunk (asyncio.run waits for it)."""
    import asyncio
    import threading

    stop = threading.Event()
    try:
        return await deadline.run(asyncio.to_thread(_sha256_of, path, stop))
    finally:
        stop.set()


def _sha256_of(path: Path, stop: "threading.Event") -> str:
    """Hash a regular file only: opened without blocking (a FIFO would wait for a writer
    forever) and judged by fstat of the descriptor (a device such as /dev/zero never ends)."""
    from ..safeio import open_regular

    fd, _ = open_regular(path, follow=True)
    try:
        digest = hashlib.sha256()
        while not stop.is_set():
            chunk = os.read(fd, CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
        raise _Stopped  # nobody waits for this result any more
    finally:
        os.close(fd)


class Progress:
    """One model's progress: a redrawn bar on a terminal; status changes, one a line, otherwise."""

    WIDTH = 30

    def __init__(self, label: str, tty: bool, out: IO[str] | None = None):
        self.label, self.tty, self.out = label, tty, out
        self.last_note = ""
        self.last_draw = 0.0
        self.drawn = False

    def _write(self, text: str) -> None:
        out = self.out or sys.stdout
        out.write(text)  # not click.echo: it strips the terminal codes the bar needs
        out.flush()

    def note(self, status: str) -> None:
        if status and status != self.last_note and not self.tty:
            self._write(f"{self.label}: {status}\n")
        self.last_note = status or self.last_note

    def update(self, done: int, total: int, status: str) -> None:
        if not self.tty:
            self.note(status)
            return
        now = time.monotonic()
        if now - self.last_draw < 0.1 and done < total:
            return
        self.last_draw = now
        frac = min(1.0, done / total) if total else 0.0  # a peer's 'completed' may exceed 'total'
        fill = int(frac * self.WIDTH)
        size = f"{human(done)} of {human(total)}" if total else human(done)
        self._write(f"\r{self.label} [{'#' * fill}{'.' * (self.WIDTH - fill)}] {frac:4.0%} {size}\x1b[K")
        self.drawn = True

    def finish(self, message: str | None = None) -> None:
        if self.tty and self.drawn:
            self._write("\r\x1b[K")
            self.drawn = False
        if message:
            self._write(f"{self.label}: {message}\n")
