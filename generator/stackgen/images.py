"""Default container images for the services, pinned to a tag (never `latest`).

Read by every target that runs a service in a container (home-manager's Quadlet containers;
compose and quadlet). A service's `image:` in the spec overrides the table.
"""

from __future__ import annotations

from .spec.model import Service

OLLAMA = "docker.io/ollama/ollama:0.12.3"
LLAMA_CPP = "ghcr.io/ggml-org/llama.cpp:server-b6700"
LLAMA_CPP_CUDA = "ghcr.io/ggml-org/llama.cpp:server-cuda-b6700"
REDIS = "docker.io/library/redis:7.4"
QDRANT = "docker.io/qdrant/qdrant:v1.15.4"
OPEN_WEBUI = "ghcr.io/open-webui/open-webui:v0.6.30"


def postgres(version: int, extensions: tuple[str, ...]) -> str:
    """The smallest image that carries the requested extensions."""
    wanted = set(extensions)
    if wanted <= {"pgvector"}:
        return f"docker.io/pgvector/pgvector:pg{version}" if wanted else f"docker.io/library/postgres:{version}"
    if wanted <= {"postgis"}:
        return f"docker.io/postgis/postgis:{version}-3.5"
    # Timescale's HA image bundles pgvector, postgis, timescaledb, pg_cron, pg_repack, pg_partman.
    return f"docker.io/timescale/timescaledb-ha:pg{version}"


def image(svc: Service) -> str:
    if svc.image:
        return svc.image
    if svc.kind == "postgres":
        return postgres(svc.version, tuple(svc.extensions))
    return {
        "ollama": OLLAMA,
        "llama-cpp": LLAMA_CPP_CUDA if svc.gpu else LLAMA_CPP,
        "redis": REDIS,
        "qdrant": QDRANT,
        "open-webui": OPEN_WEBUI,
    }[svc.kind]
