"""benchmarks/run.py keeps working as targets are added: one short run, every part."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from conftest import ROOT


def test_benchmark_runs_every_part(tmp_path):
    out = tmp_path / "bench.json"
    parts = "cli,scale,fanout,instances" + (",hook" if shutil.which("nix-instantiate") else "")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--runs", "1", "--scale-runs", "1", "--hook-runs", "2", "--sizes", "5,10,20", "--only", parts, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    for name in ("floor_pass", "floor_imports", "render", "rerender", "check", "validate", "help"):
        assert res["cli"][name]["median"] > 0
    assert set(res["scale"]) == set(res["fanout"]) == {"5", "10", "20"}
    # Services are instances (named, any number of a kind): every target renders the fan-out.
    assert res["fanout"]["20"]["files"] >= 1 and res["fanout"]["20"]["skipped"] == []
    # (10 and 20 are both past the six kinds: the same targets render, so their bytes compare)
    assert res["fanout"]["10"]["skipped"] == res["fanout"]["20"]["skipped"]
    assert res["fanout"]["20"]["bytes"] > res["fanout"]["10"]["bytes"], "the services must reach the output"
    # Issue 11: N container services written in a spec, and the render's paired ratio to the floor.
    inst = res["instances"]
    assert {"devshell", "compose", "quadlet"} <= set(inst["targets"])
    assert inst["20"]["files"] > inst["10"]["files"] > inst["5"]["files"] > 0 and inst["20"]["cpu_ms"] > 0
    assert res["cli"]["render"]["paired_x_imports"] > 0 and res["cli"]["render"]["paired_cpu_x_imports"] > 0
    assert any("1,000" not in line and "paired" in line for line in res["targets"])
    if "hook" in parts:
        assert res["hook"]["debian"]["in_shell"]["median"] > 0
    assert "targets:" in proc.stdout


def test_stages_times_every_stage_of_a_real_render(tmp_path):
    """benchmarks/stages.py: the reference render, stage by stage; every stage took time."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import stages
    finally:
        sys.path.pop(0)
    got = stages.measure(ROOT / "examples" / "ai-stack.yaml", runs=1)
    assert list(got) == list(stages.STAGES)
    assert all(r["wall_ms"] > 0 and r["cpu_ms"] >= 0 for r in got.values()), got
