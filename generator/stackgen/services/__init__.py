"""Service kinds: one module each. `KINDS` maps a kind's name to its `Kind`, in the order the
rendered files list services (the built-in kinds, then the generic ones)."""

from __future__ import annotations

from . import app, container, llama_cpp, ollama, open_webui, postgres, qdrant, redis
from .base import Endpoint, Kind

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        ollama.KIND,
        llama_cpp.KIND,
        postgres.KIND,
        redis.KIND,
        qdrant.KIND,
        open_webui.KIND,
        container.KIND,
        app.KIND,
    )
}
BUILTIN = tuple(KINDS)[:6]  # the kinds a service's name may stand for (v1 specs: no `kind:`)

__all__ = ["BUILTIN", "KINDS", "Endpoint", "Kind"]
