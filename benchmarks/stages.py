#!/usr/bin/env python3
"""Where a render's time goes: each stage of `stackgen render SPEC -o NEW_DIR`, timed inside
the process, as the CLI runs them; medians over --runs fresh processes.

    python benchmarks/stages.py [--runs 11] [SPEC]

Stages: the import floor (yaml, jinja2, click), `import stackgen.cli`, the render's own
imports (render, spec, write, targets), load_spec (YAML + validation), render_tree (every
target, templates from the compiled-template cache), write.plan + write.apply (classify,
stage, fsync, install, state). Wall (perf_counter) and CPU (process_time: user + system of
this process) for each. What the whole-process numbers of run.py do not show: which stage
to work on. Run with the Python that has stackgen installed (.venv/bin/python).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "STACKGEN_NO_CACHE")}
STAGES = ("floor imports", "import stackgen.cli", "render imports", "load_spec", "render_tree", "plan + apply")

# The child: the CLI's render path, stage by stage (as cli.render and cli.run run it).
CHILD = """
import sys, time
marks = [(time.perf_counter(), time.process_time())]
def mark():
    marks.append((time.perf_counter(), time.process_time()))
import yaml, jinja2, click
mark()
import gc
import stackgen.cli
gc.freeze()  # as cli.run does before the command runs
mark()
from pathlib import Path
from stackgen import write
from stackgen.render import render_tree
from stackgen.spec import load_spec
import stackgen.targets
mark()
spec = Path(sys.argv[1])
loaded = load_spec(spec, str(spec), spec.read_bytes())
mark()
files = render_tree(loaded)
mark()
plan = write.plan(Path(sys.argv[2]), files, loaded.source_sha256)
write.apply(plan)
mark()
print([[(b[0] - a[0]) * 1000, (b[1] - a[1]) * 1000] for a, b in zip(marks, marks[1:])])
"""


def measure(spec: Path, runs: int) -> dict:
    samples: list[list[list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="stackgen-stages-") as tmp:
        for i in range(runs + 1):  # the first run fills the template cache and the bytecode
            out = Path(tmp) / f"out-{i}"
            proc = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(out)], capture_output=True, text=True, env=CHILD_ENV)
            if proc.returncode != 0:
                raise SystemExit(f"the render failed:\n{proc.stderr}")
            if i:
                samples.append(json.loads(proc.stdout))
    return {
        stage: {"wall_ms": statistics.median(s[k][0] for s in samples), "cpu_ms": statistics.median(s[k][1] for s in samples)}
        for k, stage in enumerate(STAGES)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", default=str(ROOT / "examples" / "ai-stack.yaml"))
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    got = measure(Path(args.spec), args.runs)
    print(f"{'stage':<22}{'wall ms':>9}{'CPU ms':>9}   (medians of {args.runs} processes; load average {os.getloadavg()[0]:.2f})")
    for stage, r in got.items():
        print(f"{stage:<22}{r['wall_ms']:>9.1f}{r['cpu_ms']:>9.1f}")
    above = [r for stage, r in got.items() if stage != "floor imports"]
    print(f"{'above the floor':<22}{sum(r['wall_ms'] for r in above):>9.1f}{sum(r['cpu_ms'] for r in above):>9.1f}")


if __name__ == "__main__":
    main()
