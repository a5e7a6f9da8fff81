"""Render and write N services in-process: the part of `stackgen render` that grows with them.

    python benchmarks/fanout.py N OUT_DIR --time|--tracemalloc

Spec v1 names each service by its kind (one ollama, one postgres, ...), so a spec cannot hold
1,000 services. This builds the validated `Spec` directly instead: the reference stack's six
kinds cycled N times, the first of each kind under its own name (so `spec.has(kind)` and
`spec.services[kind]` still find it) and the rest as `<kind>-<i>`, every one on its own port.
Loading and validating are skipped (`scale` in run.py measures them through the CLI, with
large package and env lists). A target that refuses services not keyed by their kind is
left out and named in the output, rather than failing the whole run.

Prints one JSON object: ms and cpu_ms (render, template compilation included, + plan + apply), heap_peak_kib (with --tracemalloc, which
slows the run, so its time is not reported), rss_kib, files, bytes, skipped.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

from stackgen import write
from stackgen.records import replace
from stackgen.render import Rendered, render_tree
from stackgen.spec import load_spec
from stackgen.spec.model import Service

REFERENCE = Path(__file__).resolve().parents[1] / "examples" / "ai-stack.yaml"


def synthetic(n: int):
    base = load_spec(REFERENCE)
    kinds = list(base.services.values())
    services: dict[str, Service] = {}
    for i in range(n):
        proto = kinds[i % len(kinds)]
        name = proto.kind if i < len(kinds) else f"{proto.kind}-{i}"
        options = dict(proto.options)
        if "grpc_port" in options:
            options["grpc_port"] = 40000 + i
        services[name] = replace(proto, name=name, port=20000 + i, options=options)
    return replace(base, name=f"fanout-{n}", services=services)


def main() -> int:
    n, out, mode = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    spec = synthetic(n)
    if mode == "--tracemalloc":
        tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    rendered: dict[str, Rendered] = {}
    skipped, owners = [], set()
    for target in spec.targets:
        try:
            files = render_tree(spec, target)
        except Exception:  # noqa: BLE001 - a target keyed by kind: reported, not fatal
            skipped.append(target)
            continue
        owners |= {f.target for f in files}
        rendered.update((f.path, f) for f in files)
    files = [rendered[p] for p in sorted(rendered)]
    write.apply(write.plan(out, files, spec.source_sha256, owners))
    ms, cpu_ms = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
    peak = tracemalloc.get_traced_memory()[1] // 1024 if mode == "--tracemalloc" else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"ms": ms, "cpu_ms": cpu_ms, "heap_peak_kib": peak, "rss_kib": rss, "files": len(files), "bytes": sum(len(f.text.encode()) for f in files), "skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
