"""`stackgen mirrors test`: measure the Nix caches, PyPI indexes and Hugging Face endpoints.

Every endpoint is probed at once (asyncio + httpx) with one deadline, so the command takes
about --timeout seconds at worst and never hangs. What counts as "working":
  nix   GET <cache>/nix-cache-info answers 200 with `StoreDir: /nix/store`
  pypi  GET <index>/pip/ answers 200 and lists pip's files (a PEP 503 simple index)
  hf    GET <endpoint>/openai-community/gpt2/resolve/main/config.json answers 200 with JSON
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from . import echo_json, table, yaml_block

KINDS = ("nix", "pypi", "hf")
HF_PROBE = "/openai-community/gpt2/resolve/main/config.json"


def region_defaults(region: str) -> dict[str, str]:
    """What `region:` alone gives, so the suggestion only names what differs."""
    from .. import mirrordata as md

    if region == "china":
        return {"pypi": md.CHINA_PYPI[0], "hf": md.CHINA_HF}
    return {"pypi": md.GLOBAL_PYPI, "hf": md.GLOBAL_HF}


@dataclass
class Endpoint:
    kind: str
    url: str
    origin: str  # global | china | cuda | spec | option


@dataclass
class Result:
    endpoint: Endpoint
    ok: bool
    seconds: float
    detail: str  # what was read, or why it failed

    def as_json(self) -> dict:
        return {
            "kind": self.endpoint.kind,
            "url": self.endpoint.url,
            "origin": self.endpoint.origin,
            "ok": self.ok,
            "latency_ms": round(self.seconds * 1000, 1) if self.ok else None,
            ("detail" if self.ok else "error"): self.detail,
        }


@click.group()
def mirrors() -> None:
    """Package mirrors and caches."""


@mirrors.command("test")
@click.option("--region", type=click.Choice(["global", "china"]), help="Probe only this region's built-in mirrors (default: both).")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Also probe the mirrors this stack.yaml declares.")
@click.option("--nix", "nix_urls", multiple=True, metavar="URL", help="Probe this Nix cache (repeatable). Any URL option replaces the built-in lists.")
@click.option("--pypi", "pypi_urls", multiple=True, metavar="URL", help="Probe this PyPI simple index, e.g. https://host/simple (repeatable).")
@click.option("--hf", "hf_urls", multiple=True, metavar="URL", help="Probe this Hugging Face endpoint (repeatable).")
@click.option("--timeout", type=click.FloatRange(0.1, 120), default=5.0, show_default=True, help="Seconds allowed for every probe (they run at once).")
@click.option("--json", "as_json", is_flag=True, help="Print the results and the suggestion as JSON.")
def test_mirrors(region, spec_path, nix_urls, pypi_urls, hf_urls, timeout, as_json) -> None:
    """Probe Nix caches, PyPI indexes and HF endpoints; print a latency table, fastest first.

    Exit 0 when every kind probed has at least one working endpoint, 1 otherwise."""
    from .. import net

    endpoints = candidates(region, nix_urls, pypi_urls, hf_urls)
    if spec_path is not None:
        from . import load

        endpoints += spec_endpoints(load(spec_path))
    endpoints = list({(e.kind, e.url): e for e in endpoints}.values())
    results = sorted(net.run(probe_all(endpoints, timeout)), key=_order)
    suggestion = suggest(results, region)
    failed_kinds = [k for k in KINDS if any(r.endpoint.kind == k for r in results) and not any(r.ok and r.endpoint.kind == k for r in results)]
    if as_json:
        echo_json({"results": [r.as_json() for r in results], "suggested_mirrors": suggestion})
    else:
        rows = [(r.endpoint.kind, r.endpoint.url, f"{r.seconds * 1000:.0f} ms" if r.ok else "-", "ok" if r.ok else "FAIL", r.detail) for r in results]
        click.echo(table(("kind", "endpoint", "latency", "result", "detail"), rows))
        click.echo("")
        if suggestion:
            click.echo("suggested mirrors: block for stack.yaml:\n")
            click.echo(yaml_block("mirrors", suggestion), nl=False)
    for kind in failed_kinds:
        click.echo(f"no working {kind} endpoint", err=True)
    if failed_kinds:
        raise SystemExit(1)


def candidates(region: str | None, nix_urls, pypi_urls, hf_urls) -> list[Endpoint]:
    from .. import mirrordata as md

    given = [Endpoint("nix", u, "option") for u in nix_urls]
    given += [Endpoint("pypi", u, "option") for u in pypi_urls]
    given += [Endpoint("hf", u, "option") for u in hf_urls]
    if given:
        return given
    out: list[Endpoint] = []
    if region in (None, "global"):
        out += [Endpoint("nix", md.CACHE_NIXOS_ORG, "global"), Endpoint("pypi", md.GLOBAL_PYPI, "global"), Endpoint("hf", md.GLOBAL_HF, "global")]
    if region in (None, "china"):
        out += [Endpoint("nix", u, "china") for u in md.CHINA_NIX]
        out += [Endpoint("pypi", u, "china") for u in md.CHINA_PYPI]
        out.append(Endpoint("hf", md.CHINA_HF, "china"))
    return out


def spec_endpoints(spec) -> list[Endpoint]:
    from .. import mirrordata as md

    out = [Endpoint("nix", c.url, "spec") for c in spec.mirrors.nix]
    if spec.gpu.nvidia:
        out.append(Endpoint("nix", md.CUDA_CACHE.url, "cuda"))
    if spec.mirrors.pypi:
        out.append(Endpoint("pypi", spec.mirrors.pypi, "spec"))
    if spec.mirrors.huggingface:
        out.append(Endpoint("hf", spec.mirrors.huggingface, "spec"))
    return out


async def probe_all(endpoints: list[Endpoint], timeout: float) -> list[Result]:
    import asyncio

    from .. import net

    async with net.client(timeout) as http:
        async def one(e: Endpoint) -> Result:
            got = await net.timed(lambda deadline: CHECKS[e.kind](http, e.url.rstrip("/"), deadline), timeout)
            return Result(e, got.ok, got.seconds, got.value if got.ok else got.error)

        return list(await asyncio.gather(*(one(e) for e in endpoints)))


async def _get(http, url: str, deadline) -> str:
    """The text at `url` (redirects followed), read through net's size and time bounds."""
    from .. import net

    reply = await net.fetch(http, url, deadline, redirects=True)
    if reply.status != 200:
        raise net.ProbeError(f"HTTP {reply.status}")
    return reply.text


async def _nix(http, url: str, deadline) -> str:
    from ..errors import peer_text
    from ..net import ProbeError

    info = dict(line.split(":", 1) for line in (await _get(http, url + "/nix-cache-info", deadline)).splitlines() if ":" in line)
    store = info.get("StoreDir", "").strip()
    if not store:
        raise ProbeError("no StoreDir in /nix-cache-info: not a Nix binary cache")
    if store != "/nix/store":
        raise ProbeError(f"StoreDir is {peer_text(store, 60)}, not /nix/store")
    priority = info.get("Priority", "").strip()
    return f"StoreDir {store}" + (f", priority {peer_text(priority, 20)}" if priority else "")


async def _pypi(http, url: str, deadline) -> str:
    from ..net import ProbeError

    body = await _get(http, url + "/pip/", deadline)
    files = body.count("pip-")
    if not files:
        raise ProbeError("/pip/ lists no pip files: not a PyPI simple index")
    return "lists pip's files"


async def _hf(http, url: str, deadline) -> str:
    from ..net import ProbeError, parse_json

    config = parse_json(await _get(http, url + HF_PROBE, deadline), f"sent {HF_PROBE}")
    if not isinstance(config, dict) or "model_type" not in config:
        raise ProbeError(f"{HF_PROBE} is not a model config: not a Hugging Face endpoint")
    return "serves model files"


CHECKS = {"nix": _nix, "pypi": _pypi, "hf": _hf}


def _order(r: Result):
    return (KINDS.index(r.endpoint.kind), not r.ok, r.seconds if r.ok else 0.0, r.endpoint.url)


def suggest(results: list[Result], region: str | None) -> dict:
    """The `mirrors:` block for the fastest working endpoints (results are sorted fastest first)."""
    fastest = {k: next((r.endpoint for r in results if r.ok and r.endpoint.kind == k), None) for k in KINDS}
    block: dict = {}
    builtin_nix = next((r.endpoint for r in results if r.ok and r.endpoint.kind == "nix" and r.endpoint.origin in ("global", "china")), None)
    chosen = region or (builtin_nix.origin if builtin_nix else None)
    if chosen:
        block["region"] = chosen
    extra = [r.endpoint.url for r in results if r.ok and r.endpoint.kind == "nix" and r.endpoint.origin in ("spec", "option")]
    if extra:
        block["nix"] = extra
    defaults = region_defaults(chosen or "global")
    for kind, key in (("pypi", "pypi"), ("hf", "huggingface")):
        best = fastest[kind]
        if best is not None and best.url.rstrip("/") != defaults[kind].rstrip("/"):
            block[key] = best.url
    return block
