"""The spec stage: `load_spec(path)` reads, checks and returns a `Spec` (or raises StackError)."""

from __future__ import annotations

from pathlib import Path

from .loader import Document, load, parse
from .model import ALL_TARGETS, Service, Spec
from .validate import validate

__all__ = ["ALL_TARGETS", "Document", "Service", "Spec", "load_spec", "parse", "validate"]


def load_spec(path: Path | str, display: str | None = None, raw: bytes | None = None) -> Spec:
    """`raw`: the spec's bytes when the caller has read them already (see safeio.read_spec_bytes)."""
    return validate(load(Path(path), display, raw))
