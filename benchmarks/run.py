#!/usr/bin/env python3
"""stackgen's benchmark: whole-process wall time of the real CLI, scaling, and the shellHook.

    python benchmarks/run.py [--runs N] [--json PATH]

Run it with the Python that has stackgen installed (.venv/bin/python). It prints a table and
writes JSON (default benchmarks/results/latest.json, which git ignores). Every number is a
median of N whole-process runs, measured here with time.perf_counter around the child; the
commands are interleaved run by run, so a burst of load on the machine hits all of them
alike. The floors (`python -c pass`, and importing yaml, jinja2 and click) run in the same
rounds, and every command is also given as a ratio to them.

Parts:
  cli      render into an empty directory, the unchanged re-render, render --check,
           validate, --help; against the floors.
  scale    generated specs of 10, 100 and 1,000 packages and env variables (and up to 100
           Ollama models: the spec's own limit) through the whole CLI; time and the child's
           peak RSS. Spec v1 has one service per kind, so N services cannot be written in a
           spec: `fanout` covers that.
  fanout   the render and write stages in-process (benchmarks/fanout.py) on a synthetic Spec
           holding N services of the six kinds under distinct names and ports; time, peak
           Python heap (tracemalloc) and RSS.
  instances  N `container` services written in a spec (v1.1 instances) through the whole
           CLI (benchmarks/instances.py): wall and CPU, nixos and home-manager included
           once validation accepts containers there.
  hook     the rendered devshell's shellHook, evaluated by nix-instantiate against stub
           packages and run by bash against a fake driver tree; median of --hook-runs.

Exit status: 0 when it ran (targets missed are reported, not fatal), 1 when a command failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "examples" / "ai-stack.yaml"
STUB_PKGS = ROOT / "tests" / "nix" / "stub-pkgs.nix"
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"

# The children run as an installed stackgen does: with its bytecode cached (`pip install`
# compiles it). PYTHONDONTWRITEBYTECODE would make every run compile stackgen from source.
CHILD_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "STACKGEN_NO_CACHE")}
NO_CACHE = {**CHILD_ENV, "STACKGEN_NO_CACHE": "1"}

# The targets, in milliseconds (ratios are to the import floor).
TARGETS = {
    "render": 150.0,
    "render_ratio": 1.3,  # issue 11: the reference render within 1.3x the import floor (paired ratios)
    "rerender": 120.0,
    "check": 120.0,
    "fanout_1000": 3000.0,
    "instances_1000": 3000.0,  # issue 11: 1,000 `container` services, whole process
    "hook": 15.0,
}


# --- running and timing ------------------------------------------------------------------------


class Failed(Exception):
    pass


def timed(argv: list[str], *, cwd: Path | None = None, env: dict | None = None, expect: int = 0) -> tuple[float, float, int]:
    """Run argv once; (wall ms, CPU ms (user + system), peak RSS KiB) of that child. Output is discarded.

    CPU time is reported beside wall time because it is what a loaded machine disturbs least."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=CHILD_ENV if env is None else env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != expect:
        raise Failed(f"{' '.join(map(str, argv))} exited {proc.returncode} (expected {expect}):\n{err}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=4) if len(ordered) >= 2 else [ordered[0]] * 3
    return {"median": statistics.median(ordered), "min": ordered[0], "q1": q[0], "q3": q[2], "n": len(ordered)}


def stackgen_argv() -> list[str]:
    """The installed `stackgen` script beside this Python (what users run), else `python -m stackgen`."""
    script = Path(sys.executable).parent / "stackgen"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stackgen"]


def rounds(commands: dict[str, dict], runs: int, warmup: int = 2) -> dict[str, dict]:
    """Run every command `runs` times, interleaved; each command is {argv, setup?, cwd?, expect?}."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, int] = {name: 0 for name in commands}
    for i in range(warmup + runs):
        for name, cmd in commands.items():
            argv = cmd["setup"]() if "setup" in cmd else cmd["argv"]
            wall, cpu, peak = timed(argv, cwd=cmd.get("cwd"), env=cmd.get("env"), expect=cmd.get("expect", 0))
            if i >= warmup:
                walls[name].append(wall)
                cpus[name].append(cpu)
                rss[name] = max(rss[name], peak)
    return {
        name: {**summary(walls[name]), "cpu_median": statistics.median(cpus[name]), "rss_kib": rss[name], "walls": walls[name], "cpus": cpus[name]}
        for name in commands
    }


def paired(res: dict, name: str, floor: str, key: str) -> float:
    """The median over rounds of (command / floor) in the same round: load that hits one
    round hits both sides of its ratio, which a ratio of two medians does not cancel."""
    return statistics.median(a / b for a, b in zip(res[name][key], res[floor][key]))


# --- parts -------------------------------------------------------------------------------------


def bench_cli(work: Path, runs: int) -> dict:
    sg = stackgen_argv()
    spec = str(REFERENCE)
    fresh = work / "fresh"
    fresh.mkdir()
    counter = iter(range(10**9))

    def render_fresh() -> list[str]:  # a new empty directory for every run
        return [*sg, "render", spec, "-o", str(fresh / str(next(counter)))]

    warm = work / "warm"
    timed([*sg, "render", spec, "-o", str(warm)])
    commands = {
        "floor_pass": {"argv": [sys.executable, "-c", "pass"]},
        "floor_imports": {"argv": [sys.executable, "-c", "import yaml, jinja2, click"]},
        "render": {"setup": render_fresh},
        "rerender": {"argv": [*sg, "render", spec, "-o", str(warm)]},
        "check": {"argv": [*sg, "render", "--check", spec, "-o", str(warm)]},
        # the same without the caches (compiled templates, unchanged-render shortcut)
        "render_nocache": {"setup": render_fresh, "env": NO_CACHE},
        "check_nocache": {"argv": [*sg, "render", "--check", spec, "-o", str(warm)], "env": NO_CACHE},
        "validate": {"argv": [*sg, "validate", spec]},
        "help": {"argv": [*sg, "--help"]},
    }
    res = rounds(commands, runs)
    for name, r in res.items():
        r["x_pass"] = r["median"] / res["floor_pass"]["median"]
        r["x_imports"] = r["median"] / res["floor_imports"]["median"]
        r["cpu_x_imports"] = r["cpu_median"] / res["floor_imports"]["cpu_median"]
        r["paired_x_imports"] = paired(res, name, "floor_imports", "walls")
        r["paired_cpu_x_imports"] = paired(res, name, "floor_imports", "cpus")
    return res


def scale_spec(n: int) -> str:
    """The reference stack with n packages, n env variables and min(n, 100) Ollama models."""
    lines = [
        "version: 1",
        f"name: scale-{n}",
        "systems: [x86_64-linux]",
        "gpu: {vendor: nvidia}",
        "packages:",
        *(f"  - pkg{i:05d}" for i in range(n)),
        "env:",
        *(f"  VAR_{i:05d}: \"value {i} with $dollar and 'quote'\"" for i in range(n)),
        "services:",
        "  ollama:",
        "    models:",
        *(f'      - "model-{i}:7b"' for i in range(min(n, 100))),
        "  llama-cpp: {model: /var/lib/llama-cpp/models/m.gguf}",
        "  postgres: {databases: [aidb], extensions: [pgvector]}",
        "  redis: {}",
        "  qdrant: {}",
        "  open-webui: {}",
    ]
    return "\n".join(lines) + "\n"


def bench_scale(work: Path, sizes: list[int], runs: int) -> dict:
    sg = stackgen_argv()
    out: dict[str, dict] = {}
    commands: dict[str, dict] = {}
    for n in sizes:
        spec = work / f"scale-{n}.yaml"
        spec.write_text(scale_spec(n))
        counter = iter(range(10**9))
        commands[str(n)] = {"setup": lambda spec=spec, n=n, counter=counter: [*sg, "render", str(spec), "-o", str(work / f"s{n}-{next(counter)}")]}
        out[str(n)] = {"spec_bytes": spec.stat().st_size}
    res = rounds(commands, runs, warmup=1)
    for n, r in res.items():
        out[n].update(r)
    return out


def bench_fanout(work: Path, sizes: list[int], runs: int) -> dict:
    out: dict[str, dict] = {}
    script = ROOT / "benchmarks" / "fanout.py"
    for n in sizes:
        times, cpus, walls, rss, last = [], [], [], 0, None
        for i in range(runs + 1):
            dest = work / f"fan{n}-{i}"
            mode = "--tracemalloc" if i == runs else "--time"
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, str(script), str(n), str(dest), mode], capture_output=True, text=True, env=CHILD_ENV)
            wall = (time.perf_counter() - start) * 1000
            if proc.returncode != 0:
                raise Failed(f"fanout {n} failed:\n{proc.stderr}")
            got = json.loads(proc.stdout)
            if mode == "--time":
                times.append(got["ms"])
                cpus.append(got["cpu_ms"])
                walls.append(wall)
                rss = max(rss, got["rss_kib"])
            else:
                last = got
        out[str(n)] = {
            **summary(times),
            "cpu_median": statistics.median(cpus),
            "process_median": statistics.median(walls),
            "rss_kib": rss,
            "heap_peak_kib": last["heap_peak_kib"],
            "files": last["files"],
            "bytes": last["bytes"],
            "skipped": last["skipped"],
        }
    return out


def bench_instances(sizes: list[int], runs: int) -> dict:
    """benchmarks/instances.py: N `container` services through the whole CLI."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import instances

    return instances.measure(sizes, runs, "auto")


HOOK_SPEC = "version: 1\nname: hookbench\nsystems: [x86_64-linux]\ngpu: {vendor: nvidia}\nenv: {A: b}\ntargets: [devshell]\n"


def hook_text(work: Path) -> str:
    """The shellHook string as Nix evaluates it (stub packages), for the reference-like GPU stack."""
    tree = work / "hook-tree"
    tree.mkdir()
    (tree / "stack.yaml").write_text(HOOK_SPEC)
    timed([*stackgen_argv(), "render", str(tree / "stack.yaml")])
    env = dict(CHILD_ENV, NIX_CONFIG="experimental-features = nix-command flakes\nsubstituters =")
    expr = f"(import {tree}/nix/devshell.nix {{ pkgs = import {STUB_PKGS}; }}).shellHook"
    # read-write: `source ${./driver-libs.sh}` must put that file into the store, as nix develop does
    got = subprocess.run(["nix-instantiate", "--read-write-mode", "--eval", "--strict", "--json", "-E", expr], capture_output=True, text=True, env=env)
    if got.returncode != 0:
        raise Failed(f"nix-instantiate could not evaluate the shellHook:\n{got.stderr}")
    return json.loads(got.stdout)


def fake_driver_tree(root: Path, layout: str) -> None:
    libs = {
        "debian": ["usr/lib/x86_64-linux-gnu/" + n for n in ("libcuda.so.1", "libcuda.so.550.54.15", "libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1", "libc.so.6", "libssl.so.3")],
        "nixos": ["run/opengl-driver/lib/libcuda.so.1", "run/opengl-driver/lib/libnvidia-ml.so.1"],
        "none": ["usr/lib/x86_64-linux-gnu/libc.so.6"],
    }[layout]
    for rel in libs:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "etc/ld.so.conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ld.so.conf.d/libc.conf").write_text("# libc default configuration\n/usr/local/lib\n")


def bench_hook(work: Path, runs: int) -> dict:
    """Each layout: bash started, the hook run, bash exited; and bash alone, as the floor.

    `in_shell` times the hook inside one bash with $EPOCHREALTIME (what it adds to a
    `nix develop` whose bash is already running)."""
    if shutil.which("nix-instantiate") is None or shutil.which("bash") is None:
        return {"skipped": "nix-instantiate or bash is not installed (tests/install-deps.sh installs them)"}
    hook = hook_text(work)
    hook_file = work / "hook.sh"
    hook_file.write_text(hook)
    base = {"PATH": os.environ["PATH"], "HOME": str(work / "home"), "LD_LIBRARY_PATH": "/nix/store/x-zlib/lib"}
    results: dict[str, dict] = {}
    commands: dict[str, dict] = {"bash_floor": {"argv": ["bash", "--norc", "--noprofile", "-c", ":"]}}
    envs: dict[str, dict] = {}
    for layout in ("debian", "nixos", "none"):
        root = work / f"sysroot-{layout}"
        fake_driver_tree(root, layout)
        envs[layout] = {**base, "STACKGEN_SYSROOT": str(root), "XDG_CACHE_HOME": str(work / f"cache-{layout}")}
        commands[layout] = {"argv": ["bash", "--norc", "--noprofile", "-c", f'. "{hook_file}"'], "env": envs[layout]}
    # one checked run each: the hook must find (or not find) the driver, silently; this also
    # makes the driver links once (a first start makes them; every later start reuses them)
    expected = {
        "debian": "GPU: NVIDIA driver libraries from {root}/usr/lib/x86_64-linux-gnu\n",
        "nixos": "GPU: NVIDIA driver libraries from {root}/run/opengl-driver/lib\n",
        "none": "GPU: no NVIDIA driver (libcuda.so.1) found",
    }
    for layout, env in envs.items():
        proc = subprocess.run(commands[layout]["argv"], capture_output=True, text=True, env=env)
        want = expected[layout].format(root=env["STACKGEN_SYSROOT"])
        if proc.returncode != 0 or proc.stderr or want not in proc.stdout:
            raise Failed(f"the shellHook did not work on the {layout} tree (wanted {want.strip()!r}):\n{proc.stdout}{proc.stderr}")
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            walls[name].append(timed(cmd["argv"], env=cmd.get("env", base))[0])
    for name in commands:
        results[name] = summary(walls[name])
    for layout in envs:
        loop = (
            f'for i in $(seq {runs}); do LD_LIBRARY_PATH=/nix/store/x-zlib/lib; t0=$EPOCHREALTIME; . "{hook_file}" >/dev/null; '
            't1=$EPOCHREALTIME; echo "$t0 $t1" >&3; done 3>&1 >/dev/null'
        )
        proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", loop], capture_output=True, text=True, env=envs[layout])
        if proc.returncode != 0:
            raise Failed(f"hook loop failed:\n{proc.stderr}")
        samples = [(float(b) - float(a)) * 1000 for a, b in (line.split() for line in proc.stdout.split("\n") if line)]
        results[layout]["in_shell"] = summary(samples)
    # a cold start: the first shell after a driver change, which relinks
    cold = []
    for i in range(min(runs, 20)):
        env = {**envs["debian"], "XDG_CACHE_HOME": str(work / f"cold-{i}")}
        cold.append(timed(commands["debian"]["argv"], env=env)[0])
    results["debian_cold"] = summary(cold)
    return results


# --- report ------------------------------------------------------------------------------------


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit or None,
        "loadavg_start": os.getloadavg(),
        "bytecode": "cached" + (" (PYTHONDONTWRITEBYTECODE dropped for the children)" if "PYTHONDONTWRITEBYTECODE" in os.environ else ""),
    }


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(res: dict) -> str:
    out = []
    m = res["machine"]
    out.append(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average {m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}")
    cli = res["cli"]
    out.append(f"\nwhole process, median of {cli['render']['n']} runs (ms); x = ratio of the medians to the floor; paired = median of the per-round ratios to the import floor")
    out.append(f"  {'command':<40}{'wall':>8}{'min':>8}{'x pass':>8}{'x imports':>10}{'CPU':>8}{'CPU x imp':>10}{'paired':>8}{'CPU pair':>9}{'RSS MiB':>9}")
    labels = {
        "floor_pass": "python -c pass",
        "floor_imports": "python -c 'import yaml, jinja2, click'",
        "render": "render ai-stack (empty dir)",
        "rerender": "render ai-stack (unchanged)",
        "check": "render --check",
        "render_nocache": "render, STACKGEN_NO_CACHE=1",
        "check_nocache": "render --check, STACKGEN_NO_CACHE=1",
        "validate": "validate",
        "help": "--help",
    }
    for name, label in labels.items():
        r = cli[name]
        out.append(
            f"  {label:<40}{r['median']:>8.1f}{r['min']:>8.1f}{r['x_pass']:>8.2f}{r['x_imports']:>10.2f}"
            f"{r['cpu_median']:>8.1f}{r['cpu_x_imports']:>10.2f}{r['paired_x_imports']:>8.2f}{r['paired_cpu_x_imports']:>9.2f}{r['rss_kib'] / 1024:>9.1f}"
        )
    if "scale" in res:
        out.append("\nscale: whole `stackgen render`, N packages + N env variables + min(N,100) models, all six services")
        out.append(f"  {'N':>6}{'spec KiB':>10}{'wall ms':>9}{'min':>8}{'CPU ms':>8}{'RSS MiB':>9}")
        for n, r in res["scale"].items():
            out.append(f"  {n:>6}{r['spec_bytes'] / 1024:>10.1f}{r['median']:>9.1f}{r['min']:>8.1f}{r['cpu_median']:>8.1f}{r['rss_kib'] / 1024:>9.1f}")
        out.append("  " + linearity(res["scale"], "cpu_median"))
    if "fanout" in res:
        out.append("\nfanout: render + write in-process, N services (six kinds cycled, distinct names and ports)")
        out.append(f"  {'N':>6}{'stage ms':>10}{'CPU ms':>8}{'process ms':>12}{'heap MiB':>10}{'RSS MiB':>9}{'files':>7}{'out KiB':>9}")
        for n, r in res["fanout"].items():
            out.append(
                f"  {n:>6}{r['median']:>10.1f}{r['cpu_median']:>8.1f}{r['process_median']:>12.1f}{r['heap_peak_kib'] / 1024:>10.1f}"
                f"{r['rss_kib'] / 1024:>9.1f}{r['files']:>7}{r['bytes'] / 1024:>9.1f}"
            )
        skipped = sorted({t for r in res["fanout"].values() for t in r["skipped"]})
        if skipped:
            out.append("  not measured (the target rejects services not keyed by kind): " + ", ".join(skipped))
        out.append("  " + linearity(res["fanout"], "cpu_median"))
    if "instances" in res:
        inst = res["instances"]
        out.append(f"\ninstances: N `container` services, whole `stackgen render` (targets {', '.join(inst['targets'])}), median of {res['scale_runs']} runs")
        out.append(f"  {'N':>6}{'wall ms':>9}{'CPU ms':>8}{'files':>7}")
        for n in (k for k in inst if k.isdigit()):
            out.append(f"  {n:>6}{inst[n]['ms']:>9.1f}{inst[n]['cpu_ms']:>8.1f}{inst[n]['files']:>7}")
        if "per_service_cpu_us" in inst:
            out.append("  CPU per service above the smallest N: " + ", ".join(f"{n}: {v} us" for n, v in inst["per_service_cpu_us"].items()))
    if "hook" in res:
        h = res["hook"]
        if "skipped" in h:
            out.append(f"\nshellHook: skipped: {h['skipped']}")
        else:
            out.append(f"\nshellHook (nix-evaluated, fake driver tree), median of {h['bash_floor']['n']} runs (ms)")
            out.append(f"  {'layout':<30}{'bash + hook':>12}{'in shell':>10}")
            out.append(f"  {'bash -c : (floor)':<30}{h['bash_floor']['median']:>12.2f}{'':>10}")
            for layout in ("debian", "nixos", "none"):
                out.append(f"  {layout + ' (warm)':<30}{h[layout]['median']:>12.2f}{h[layout]['in_shell']['median']:>10.2f}")
            out.append(f"  {'debian (cold: first start)':<30}{h['debian_cold']['median']:>12.2f}")
    out.append("\ntargets:")
    for line in res["targets"]:
        out.append("  " + line)
    return "\n".join(out)


def linearity(rows: dict[str, dict], key: str) -> str:
    """Cost per item above the smallest size, at each larger size: flat when growth is linear.

    (t(n) - t(n0)) / (n - n0) stays constant for a linear cost and grows with n for a
    superlinear one (about 9x from 100 to 1,000 for a quadratic). Judged on CPU time, which
    the load of a busy machine disturbs far less than wall time."""
    sizes = sorted(int(n) for n in rows)
    if len(sizes) < 3:
        return "linearity: needs three sizes"
    n0, t0 = sizes[0], rows[str(sizes[0])][key]
    per = {n: (rows[str(n)][key] - t0) / (n - n0) for n in sizes[1:]}
    shown = ", ".join(f"{n}: {v * 1000:.0f} us" for n, v in per.items())
    first, last = per[sizes[1]], per[sizes[-1]]
    noise = 0.10 * t0 / (sizes[-1] - n0)  # run-to-run jitter: 10% of the fixed cost, spread over the items
    if last <= max(first, noise) * 3:
        shape = "linear"
    else:
        shape = "SUPERLINEAR"
    return f"CPU cost per item above N={n0}: {shown} ({shape})"


def check_targets(res: dict) -> list[str]:
    cli = res["cli"]
    lines = [
        f"render {cli['render']['median']:.0f} ms < {TARGETS['render']:.0f} ms: {verdict(cli['render']['median'] < TARGETS['render'])}",
        f"render {cli['render']['paired_x_imports']:.2f}x imports (paired, wall; CPU {cli['render']['paired_cpu_x_imports']:.2f}x) <= {TARGETS['render_ratio']}x: {verdict(cli['render']['paired_x_imports'] <= TARGETS['render_ratio'])}",
        f"unchanged re-render {cli['rerender']['median']:.0f} ms < {TARGETS['rerender']:.0f} ms: {verdict(cli['rerender']['median'] < TARGETS['rerender'])}",
        f"render --check {cli['check']['median']:.0f} ms < {TARGETS['check']:.0f} ms: {verdict(cli['check']['median'] < TARGETS['check'])}",
    ]
    if "fanout" in res and "1000" in res["fanout"]:
        t = res["fanout"]["1000"]["process_median"]
        lines.append(f"1,000 services (whole process) {t:.0f} ms < {TARGETS['fanout_1000']:.0f} ms: {verdict(t < TARGETS['fanout_1000'])}")
    if "instances" in res and "1000" in res["instances"]:
        t = res["instances"]["1000"]["ms"]
        lines.append(f"1,000 container services, whole process ({', '.join(res['instances']['targets'])}) {t:.0f} ms < {TARGETS['instances_1000']:.0f} ms: {verdict(t < TARGETS['instances_1000'])}")
    if "hook" in res and "skipped" not in res["hook"]:
        t = res["hook"]["debian"]["median"]
        lines.append(f"shellHook (bash + hook, warm) {t:.1f} ms < {TARGETS['hook']:.0f} ms: {verdict(t < TARGETS['hook'])}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="runs per CLI command (default 20)")
    ap.add_argument("--scale-runs", type=int, default=5, help="runs per scale and fanout size (default 5)")
    ap.add_argument("--hook-runs", type=int, default=50, help="runs per shellHook layout (default 50)")
    ap.add_argument("--sizes", default="10,100,1000", help="sizes for scale and fanout (default 10,100,1000)")
    ap.add_argument("--only", default="cli,scale,fanout,instances,hook", help="comma-separated parts to run")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the results (default {DEFAULT_JSON.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    res: dict = {"machine": machine(), "runs": args.runs, "scale_runs": args.scale_runs, "stackgen": stackgen_argv()}
    try:
        with tempfile.TemporaryDirectory(prefix="stackgen-bench-") as tmp:
            work = Path(tmp)
            for part, fn in (
                ("cli", lambda: bench_cli(work / "cli", args.runs)),
                ("scale", lambda: bench_scale(work / "scale", sizes, args.scale_runs)),
                ("fanout", lambda: bench_fanout(work / "fanout", sizes, args.scale_runs)),
                ("instances", lambda: bench_instances(sizes, args.scale_runs)),
                ("hook", lambda: bench_hook(work / "hook", args.hook_runs)),
            ):
                if part in parts or (part == "cli"):
                    (work / part).mkdir()
                    print(f"[{part}] ...", file=sys.stderr, flush=True)
                    res[part] = fn()
    except Failed as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["targets"] = check_targets(res)
    print(report(res))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
