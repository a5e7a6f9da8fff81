#!/usr/bin/env python3
"""N `container` services through the whole CLI: `stackgen render` of a generated spec, as a
process (load, validate, plan, render, write), for N in --sizes; medians of --runs.

    python benchmarks/instances.py [--sizes 100,500,1000] [--runs 3] [--targets auto]

Prints one JSON object: {"targets": [...], "floor_pass_ms": ..., "loadavg": [...],
N: {"ms": wall median, "cpu_ms": user + system median, "files": count}, "per_service_us": ...}.

`--targets auto` (the default) renders devshell, compose and quadlet, plus nixos and
home-manager as soon as validation accepts `container` services there: a two-service spec is
validated per target first, so the benchmark grows with the generator without an edit.

Each run writes into a new directory, and all of them are removed only after the last run:
removing 2,000 files just before a timed render makes ext4's inode allocator step over the
inodes it has just freed (`recently_deleted`), a cost of the benchmark's own cleanup that a
render into a fresh directory does not otherwise pay.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_TARGETS = ["devshell", "compose", "quadlet"]
MAYBE_TARGETS = ["nixos", "home-manager"]  # refused for `container` until they render it

# As installed: bytecode cached (PYTHONDONTWRITEBYTECODE would compile stackgen every run).
CHILD_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "STACKGEN_NO_CACHE")}


def spec(n: int, targets: list[str]) -> str:
    lines = ["version: 1", f"name: fan-{n}", "systems: [x86_64-linux]", f"targets: [{', '.join(targets)}]", "services:"]
    for i in range(n):
        uses = f", uses: [svc-{i - 1}]" if i % 10 else ""  # some wiring: each tenth starts a chain
        lines.append(f"  svc-{i}: {{kind: container, image: docker.io/library/busybox:1.37, port: {20000 + i}, health: {{tcp: true}}, volumes: {{data: /data}}{uses}}}")
    return "\n".join(lines) + "\n"


def stackgen() -> str:
    return str(Path(sys.executable).with_name("stackgen"))


def accepted_targets(work: Path) -> list[str]:
    """The base targets, plus each of MAYBE_TARGETS whose validation accepts container services."""
    out = list(BASE_TARGETS)
    for target in MAYBE_TARGETS:
        path = work / f"probe-{target}.yaml"
        path.write_text(spec(2, [*BASE_TARGETS, target]))
        proc = subprocess.run([stackgen(), "validate", str(path)], capture_output=True, env=CHILD_ENV)
        if proc.returncode == 0:
            out.append(target)
    return out


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall ms, CPU ms of the child: user + system)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=CHILD_ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def measure(sizes: list[int], runs: int, targets: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="stackgen-instances-") as tmp:
        work = Path(tmp)
        chosen = accepted_targets(work) if targets == "auto" else targets.split(",")
        out: dict = {"targets": chosen, "loadavg_start": os.getloadavg()}
        floor = [timed([sys.executable, "-c", "pass"], work)[0] for _ in range(max(runs, 3))]
        out["floor_pass_ms"] = round(statistics.median(floor), 1)
        for n in sizes:
            (work / f"stack-{n}.yaml").write_text(spec(n, chosen))
        timed([stackgen(), "render", f"stack-{sizes[0]}.yaml", "-o", "warmup"], work)  # template cache, bytecode
        samples: dict[int, list[tuple[float, float]]] = {n: [] for n in sizes}
        for r in range(runs):  # sizes interleaved run by run: load on the machine hits them alike
            for n in sizes:
                samples[n].append(timed([stackgen(), "render", f"stack-{n}.yaml", "-o", f"out-{n}-{r}"], work))
        for n in sizes:
            files = sum(1 for p in (work / f"out-{n}-0").rglob("*") if p.is_file() and ".stackgen" not in p.parts)
            out[str(n)] = {
                "ms": round(statistics.median(w for w, _ in samples[n]), 1),
                "cpu_ms": round(statistics.median(c for _, c in samples[n]), 1),
                "files": files,
            }
        if len(sizes) >= 2:  # linear growth: the cost per service above the smallest size stays flat
            n0 = sizes[0]
            out["per_service_cpu_us"] = {
                str(n): round((out[str(n)]["cpu_ms"] - out[str(n0)]["cpu_ms"]) / (n - n0) * 1000) for n in sizes[1:]
            }
        out["loadavg_end"] = os.getloadavg()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,500,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--targets", default="auto", help="comma-separated targets, or auto (see the docstring)")
    args = ap.parse_args(argv)
    print(json.dumps(measure([int(s) for s in args.sizes.split(",")], args.runs, args.targets)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
