#!/usr/bin/env python3
"""N `container` services through the whole CLI: `stackgen render` of a generated spec, as a
process (load, validate, plan, render, write), for N in --sizes; median wall time of --runs.

    python benchmarks/instances.py [--sizes 250,500,1000] [--runs 3] [--targets compose,quadlet]

Prints one JSON object: {N: {"ms": median, "files": count}} plus `python -c pass` as the floor.
The nixos and home-manager targets do not render `container` services yet (validation refuses
them), so the default targets are compose and quadlet (and devshell: every service's variables).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def spec(n: int, targets: list[str]) -> str:
    lines = ["version: 1", f"name: fan-{n}", "systems: [x86_64-linux]", f"targets: [{', '.join(targets)}]", "services:"]
    for i in range(n):
        uses = f", uses: [svc-{i - 1}]" if i % 10 else ""  # some wiring: each tenth starts a chain
        lines.append(f"  svc-{i}: {{kind: container, image: docker.io/library/busybox:1.37, port: {20000 + i}, health: {{tcp: true}}, volumes: {{data: /data}}{uses}}}")
    return "\n".join(lines) + "\n"


def timed(argv: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="250,500,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--targets", default="devshell,compose,quadlet")
    args = ap.parse_args()
    stackgen = str(Path(sys.executable).with_name("stackgen"))
    out: dict = {"floor_pass_ms": statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(args.runs))}
    for n in (int(s) for s in args.sizes.split(",")):
        times, files = [], 0
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "stack.yaml").write_text(spec(n, args.targets.split(",")))
                times.append(timed([stackgen, "render", "stack.yaml", "-o", "out"], cwd=Path(tmp)))
                files = sum(1 for p in (Path(tmp) / "out").rglob("*") if p.is_file())
        out[str(n)] = {"ms": round(statistics.median(times), 1), "files": files}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
