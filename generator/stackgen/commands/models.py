"""`stackgen models pull`: pull the declared Ollama models and fetch llama.cpp's GGUF file.

Ollama: `POST /api/pull` streams JSON lines ({"status": "pulling <digest>", "digest", "total",
"completed"} ... {"status": "success"}, or {"error": ...}); models that /api/tags already lists
are left alone. GGUF: downloaded next to `model` as a hidden .part file, checked against
`model_sha256` when given, then renamed into place, so `model` is never a partial file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import click

from . import base_url, human, load
from .status import full_name

CHUNK = 1024 * 1024


@click.group()
def models() -> None:
    """Model files for the declared services."""


@models.command("pull")
@click.argument("spec", default="stack.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--timeout", type=click.FloatRange(1, 3600), default=60, show_default=True, help="Seconds without any data before a pull or download is given up.")
def pull(spec: Path, timeout: float) -> None:
    """Pull SPEC's Ollama models and download llama.cpp's model_url. Exit 1 if any fails."""
    loaded = load(spec)
    ollama = loaded.services.get("ollama")
    llama = loaded.services.get("llama-cpp")
    tty = sys.stdout.isatty()
    outcomes: list[str] = []
    if ollama is not None and ollama.models:
        outcomes += pull_ollama(base_url(ollama), list(ollama.models), timeout, tty)
    if llama is not None and llama.model_url:
        outcomes.append(fetch_gguf(llama.model_url, Path(llama.model), llama.model_sha256, timeout, tty))
    if not outcomes:
        click.echo(f"{spec}: nothing to pull (no ollama models, no llama-cpp model_url)")
        return
    counts = {k: outcomes.count(k) for k in ("pulled", "present", "failed")}
    click.echo(f"{counts['pulled']} pulled, {counts['present']} already present, {counts['failed']} failed")
    if counts["failed"]:
        raise SystemExit(1)


def pull_ollama(base: str, wanted: list[str], timeout: float, tty: bool) -> list[str]:
    from .. import net

    with net.sync_client(timeout, trust_env=False) as http:  # the local Ollama: no proxy
        try:
            tags = http.get(base + "/api/tags")
            tags.raise_for_status()
            present = {full_name(m.get("name") or m.get("model", "")) for m in tags.json().get("models", [])}
        except Exception as exc:  # unreachable, not Ollama: every model fails with the reason
            why = net.reason(exc, timeout) if not isinstance(exc, ValueError) else "GET /api/tags did not answer JSON"
            click.echo(f"ollama at {base} is not usable: {why}; start it (see 'stackgen status')", err=True)
            return ["failed"] * len(wanted)
        outcomes = []
        for model in wanted:
            if full_name(model) in present:
                click.echo(f"{model}: already present")
                outcomes.append("present")
                continue
            error = _pull_one(http, base, model, tty, timeout)
            if error:
                click.echo(f"{model}: FAILED: {error}", err=True)
            outcomes.append("failed" if error else "pulled")
        return outcomes


def _pull_one(http, base: str, model: str, tty: bool, timeout: float) -> str | None:
    """Stream one pull; returns the failure reason or None."""
    from .. import net

    bar = Progress(model, tty)
    layers: dict[str, tuple[int, int]] = {}
    try:
        with http.stream("POST", base + "/api/pull", json={"model": model, "stream": True}) as response:
            if response.status_code != 200:
                response.read()
                return f"HTTP {response.status_code}: {_error_text(response.text)}"
            for line in response.iter_lines():
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    return f"the stream is not JSON lines: {line[:80]!r}"
                if "error" in event:
                    bar.finish()
                    return str(event["error"])
                status = str(event.get("status", ""))
                if event.get("digest") and event.get("total"):
                    layers[event["digest"]] = (int(event.get("completed", 0)), int(event["total"]))
                    done = sum(c for c, _ in layers.values())
                    total = sum(t for _, t in layers.values())
                    bar.update(done, total, f"{status} ({human(int(event['total']))})")
                elif status != "success":
                    bar.note(status)
                if status == "success":
                    total = sum(t for _, t in layers.values())
                    bar.finish(f"pulled ({human(total)})" if total else "pulled")
                    return None
    except Exception as exc:
        bar.finish()
        return net.reason(exc, timeout)
    bar.finish()
    return "the stream ended before Ollama reported success"


def _error_text(body: str) -> str:
    try:
        return str(json.loads(body).get("error", body.strip()))
    except (ValueError, AttributeError):
        return body.strip()[:200] or "no message"


def fetch_gguf(url: str, target: Path, sha256: str | None, timeout: float, tty: bool) -> str:
    from .. import net

    label = target.name
    if target.exists():
        if sha256 is None:
            click.echo(f"{label}: already present at {target}")
            return "present"
        got = _sha256_of(target)
        if got == sha256:
            click.echo(f"{label}: already present at {target} (sha256 ok)")
            return "present"
        click.echo(f"{label}: FAILED: {target} exists but its sha256 is {got}, not {sha256}; remove it to download again", err=True)
        return "failed"
    part = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        part = Path(name)
        digest = hashlib.sha256()
        bar = Progress(label, tty)
        with os.fdopen(fd, "wb") as out, net.sync_client(timeout, follow_redirects=True) as http:
            with http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise net.ProbeError(f"GET {url}: HTTP {response.status_code}")
                total = int(response.headers.get("content-length") or 0)
                done = 0
                note = f"downloading {url}" + (f" ({human(total)})" if total else "")
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    bar.update(done, total, note)
                raw = response.num_bytes_downloaded
        got = digest.hexdigest()
        if total and raw != total:
            raise net.ProbeError(f"short download: {raw} of {total} bytes")
        if sha256 is not None and got != sha256:
            raise net.ProbeError(f"sha256 mismatch: the download is {got}, the spec says {sha256}")
        os.chmod(part, 0o644)
        os.replace(part, target)
        part = None
        bar.finish(f"saved {target} ({human(done)}, sha256 {'ok' if sha256 else got})")
        if sha256 is None:
            click.echo(f"  pin it: add 'model_sha256: {got}' to services.llama-cpp")
        return "pulled"
    except Exception as exc:
        why = net.reason(exc, timeout)
        click.echo(f"{label}: FAILED: {why}", err=True)
        return "failed"
    finally:
        if part is not None and part.exists():
            part.unlink()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        frac = done / total if total else 0.0
        fill = int(frac * self.WIDTH)
        size = f"{human(done)} of {human(total)}" if total else human(done)
        self._write(f"\r{self.label} [{'#' * fill}{'.' * (self.WIDTH - fill)}] {frac:4.0%} {size}\x1b[K")
        self.drawn = True

    def finish(self, message: str | None = None) -> None:
        if self.tty and self.drawn:
            self._write("\r\x1b[K")
        if message:
            self._write(f"{self.label}: {message}\n")
