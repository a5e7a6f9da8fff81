"""`stackgen status`: is each declared service up and answering its own protocol?

  ollama      GET /api/version, GET /api/tags (every declared model present?)
  llama-cpp   GET /health (503 while the model loads)
  qdrant      GET /readyz
  open-webui  GET /health
  postgres    TCP + SSLRequest, answered 'S' or 'N'
  redis       TCP + PING, answered +PONG (or -NOAUTH when a password is set)
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import click

from . import base_url, connect_host, echo_json, load, table

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@dataclass
class Health:
    kind: str
    endpoint: str
    state: str  # up | starting | incomplete | down
    detail: str

    @property
    def up(self) -> bool:
        return self.state == "up"


@click.command()
@click.argument("spec", default="stack.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the states as JSON.")
@click.option("--wait", type=click.FloatRange(0, 86400), default=0, metavar="SECONDS", help="Poll until every service is up, for at most this long.")
@click.option("--timeout", type=click.FloatRange(0.1, 60), default=3.0, show_default=True, help="Seconds allowed for each probe.")
def status(spec: Path, as_json: bool, wait: float, timeout: float) -> None:
    """Probe each service SPEC (default ./stack.yaml) declares. Exit 0 when all are up, 1 otherwise."""
    from .. import net

    loaded = load(spec)
    deadline = time.monotonic() + wait
    while True:
        results = net.run(check_all(loaded, timeout))
        left = deadline - time.monotonic()
        if all(r.up for r in results) or left <= 0:
            break
        time.sleep(min(1.0, left))
    if as_json:
        echo_json({"services": [r.__dict__ | {"up": r.up} for r in results], "all_up": all(r.up for r in results)})
    elif not results:
        click.echo(f"{spec} declares no services")
    else:
        click.echo(table(("service", "endpoint", "state", "detail"), [(r.kind, r.endpoint, r.state, r.detail) for r in results]))
    if not all(r.up for r in results):
        raise SystemExit(1)


async def check_all(spec, timeout: float) -> list[Health]:
    import asyncio

    from .. import net

    async with net.client(timeout, trust_env=False) as http:  # local services: no proxy
        async def one(svc) -> Health:
            host = connect_host(svc.host)
            endpoint = f"[{host}]:{svc.port}" if ":" in host else f"{host}:{svc.port}"
            got = await net.timed(lambda deadline: PROBES.get(svc.kind, _declared)(http, svc, deadline), timeout)
            if not got.ok:
                return Health(svc.name, endpoint, "down", got.error)
            state, detail = got.value
            return Health(svc.name, endpoint, state, detail)

        # a container or app that publishes no port cannot be reached from here
        return list(await asyncio.gather(*(one(s) for s in spec.services.values() if s.port is not None)))


def _peer(svc) -> str:
    return f"{svc.kind} at {base_url(svc).removeprefix('http://')}"


async def _json(http, svc, path: str, deadline):
    """GET `path` from the service: its JSON object, read through net's bounds."""
    from .. import net

    reply = await net.fetch(http, base_url(svc) + path, deadline)
    if reply.status != 200:
        raise net.ProbeError(f"GET {path}: HTTP {reply.status}")
    what = f"{_peer(svc)} sent a GET {path} answer"
    return net.Fields(net.parse_json(reply.body, what), what)


def full_name(model: str) -> str:
    """Ollama's name for a model: a missing tag means :latest."""
    return model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"


def model_names(tags) -> set[str]:
    """The full names of the models in Ollama's /api/tags answer (a net.Fields)."""
    return {full_name(m.text("name") or m.text("model") or "") for m in tags.objects("models")}


async def _ollama(http, svc, deadline):
    from ..errors import peer_text

    version = (await _json(http, svc, "/api/version", deadline)).text("version") or "?"
    present = model_names(await _json(http, svc, "/api/tags", deadline))
    missing = [m for m in svc.models if full_name(m) not in present]
    detail = f"ollama {peer_text(version, 60)}; models {len(svc.models) - len(missing)}/{len(svc.models)} present"
    if missing:
        return "incomplete", detail + f" (missing {', '.join(missing)}: run 'stackgen models pull')"
    return "up", detail


async def _llama_cpp(http, svc, deadline):
    from .. import net

    reply = await net.fetch(http, base_url(svc) + "/health", deadline)
    if reply.status == 503:
        return "starting", "loading the model"
    if reply.status != 200:
        return "down", f"GET /health: HTTP {reply.status}"
    return "up", "healthy"


async def _qdrant(http, svc, deadline):
    from .. import net
    from ..errors import peer_text

    reply = await net.fetch(http, base_url(svc) + "/readyz", deadline)
    if reply.status != 200:
        return "starting" if reply.status == 503 else "down", f"GET /readyz: HTTP {reply.status}"
    return "up", peer_text(reply.text.strip(), 80) or "ready"


async def _open_webui(http, svc, deadline):
    from ..errors import peer_text

    body = await _json(http, svc, "/health", deadline)
    if body.get("status") is not True:
        return "down", f"GET /health: {peer_text(json.dumps(body.value), 80)}"
    return "up", "healthy"


async def _postgres(http, svc, deadline):
    from ..net import tcp_exchange

    answer = await tcp_exchange(connect_host(svc.host), svc.port, SSL_REQUEST, deadline, limit=1)
    if answer == b"S":
        return "up", "PostgreSQL (offers TLS)"
    if answer == b"N":
        return "up", "PostgreSQL (no TLS)"
    if not answer:
        return "down", "closed the connection without answering the SSLRequest"
    return "down", f"not PostgreSQL (answered {answer!r} to an SSLRequest)"


async def _redis(http, svc, deadline):
    from ..errors import peer_text
    from ..net import tcp_exchange

    raw = await tcp_exchange(connect_host(svc.host), svc.port, b"PING\r\n", deadline, limit=256, until=b"\r\n")
    answer = raw.decode(errors="replace").strip()
    if answer == "+PONG":
        return "up", "Redis (PONG)"
    if answer.startswith("-NOAUTH"):
        return "up", "Redis (password required)"
    if answer.startswith("-"):
        return "down", f"Redis refused PING: {peer_text(answer[1:], 80)}"
    return "down", "closed the connection without answering PING" if not answer else f"not Redis (answered {peer_text(answer, 40)})"


async def _declared(http, svc, deadline):
    """A `container` or `app`: its health description's http path, else its port answering."""
    from .. import net

    probe = svc.options.get("health")
    if probe and probe[0] == "http":
        reply = await net.fetch(http, base_url(svc) + probe[1], deadline)
        return ("up", "healthy") if reply.status == 200 else ("down", f"GET {probe[1]}: HTTP {reply.status}")
    await net.tcp_exchange(connect_host(svc.host), svc.port, b"", deadline, limit=0)
    return "up", "accepts connections"


PROBES = {
    "ollama": _ollama,
    "llama-cpp": _llama_cpp,
    "postgres": _postgres,
    "redis": _redis,
    "qdrant": _qdrant,
    "open-webui": _open_webui,
}
