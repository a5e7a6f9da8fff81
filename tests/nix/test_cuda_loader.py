"""The real dynamic loader decides which libcudart a wheel gets inside the dev shell.

torch's cu12 wheels find NVIDIA's nvidia-*-cu12 wheels through an $ORIGIN-relative DT_RUNPATH;
glibc searches LD_LIBRARY_PATH before DT_RUNPATH, so any nixpkgs CUDA library the shellHook puts
there shadows the wheel's copy (pytorch/pytorch #119072, #119932). Here a tiny ELF laid out like
torch's libraries links libcudart.so.12 of one real NVIDIA wheel (12.4), a second wheel (12.1)
plays the nixpkgs copy inside stub cudaPackages, the rendered nix/devshell.nix is evaluated and
its shellHook run by bash, and glibc's ld.so (`--list`) and a dlopen by Python say which file
was mapped. The same test shows that the old layout (CUDA libraries on the path) picks 12.1.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import render_spec, render_text, require_tool

REPO = Path(__file__).resolve().parents[2]
STUB = Path(__file__).parent / "stub-pkgs.nix"
LD_SO = "/lib64/ld-linux-x86-64.so.2"
CUDART = "libcudart.so.12"
WHEEL_LIB = "nvidia/cuda_runtime/lib"
# The two pinned wheels (tests/nix/loader-wheels.txt) and what cudaRuntimeGetVersion says in each.
WHEEL_VERSION, NIX_VERSION = "12.4.127", "12.1.105"
RUNTIME_VERSION = {WHEEL_VERSION: 12040, NIX_VERSION: 12010}
GPU_SPEC = "version: 1\nname: gpu\nsystems: [x86_64-linux]\ngpu: {vendor: nvidia}\ntargets: [devshell]\n"
# What the pre-fix hook put on LD_LIBRARY_PATH after the manylinux libraries.
OLD_CUDA_LIBS = ["cuda_cudart", "libcublas", "cudnn", "nccl"]

PROBE_C = """
extern int cudaRuntimeGetVersion(int *version);
/* The runtime's own version (CUDART_VERSION of the loaded libcudart); needs no driver. */
int probe_runtime_version(void) { int v = -1; return cudaRuntimeGetVersion(&v) == 0 ? v : -1; }
"""

# Run under the shell's LD_LIBRARY_PATH: dlopen the probe as Python imports torch's libraries,
# and report the runtime version and every libcudart file mapped into the process.
DLOPEN_PY = """
import ctypes, json, sys
version = ctypes.CDLL(sys.argv[1]).probe_runtime_version()
with open("/proc/self/maps") as maps:
    mapped = sorted({line.split()[-1] for line in maps if line.rstrip().endswith("libcudart.so.12")})
print(json.dumps({"version": version, "mapped": mapped}))
"""


def wheel(version: str) -> Path:
    """A pinned wheel from .venv/wheels (tests/install-deps.sh downloads them)."""
    found = sorted((REPO / ".venv" / "wheels").glob(f"nvidia_cuda_runtime_cu12-{version}-*.whl"))
    if not found:
        message = f"nvidia-cuda-runtime-cu12 {version} is not in .venv/wheels (tests/install-deps.sh downloads it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found[0]


def extract_cudart(version: str, dest: Path) -> Path:
    """libcudart.so.12 of one wheel, unpacked into dest/<wheel's lib dir>; returns that dir."""
    with zipfile.ZipFile(wheel(version)) as whl:
        whl.extract(f"{WHEEL_LIB}/{CUDART}", dest)
    return dest / WHEEL_LIB


def nix_str(text: str) -> str:
    assert not set(text) & set('"\\$'), text  # tmp paths only; keeps the expression plain
    return f'"{text}"'


@pytest.fixture
def loader_setup(tmp_path, nix):
    if platform.machine() != "x86_64" or not Path(LD_SO).exists():
        pytest.skip(f"the loader test runs glibc's x86_64 loader ({LD_SO})")
    cc = require_tool("cc", "builds the ELF whose libcudart the loader resolves")
    readelf = require_tool("readelf", "checks that the ELF carries DT_RUNPATH, as torch's libraries do")

    # site-packages as uv lays it out: the runtime wheel, and a "torch" library finding it
    # through an $ORIGIN-relative DT_RUNPATH (--enable-new-dtags: RUNPATH, not RPATH).
    site = tmp_path / "site-packages"
    wheel_lib = extract_cudart(WHEEL_VERSION, site)
    probe = site / "torch" / "lib" / "libtorch_probe.so"
    probe.parent.mkdir(parents=True)
    (tmp_path / "probe.c").write_text(PROBE_C)
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", str(probe), str(tmp_path / "probe.c"), f"-L{wheel_lib}", f"-l:{CUDART}",
         "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../../nvidia/cuda_runtime/lib"],
        check=True, capture_output=True, text=True,
    )
    dynamic = subprocess.run([readelf, "-d", str(probe)], check=True, capture_output=True, text=True).stdout
    assert "(RUNPATH)" in dynamic and "(RPATH)" not in dynamic, dynamic

    # Stub cudaPackages whose members are directories of this test; cudart holds the other wheel's
    # libcudart, standing in for nixpkgs' copy.
    cuda = tmp_path / "cuda"
    nix_lib = cuda / "cudart" / "lib"
    nix_lib.mkdir(parents=True)
    shutil.copy(extract_cudart(NIX_VERSION, tmp_path / "nix-wheel") / CUDART, nix_lib / CUDART)

    render_text(GPU_SPEC, tmp_path / "tree")
    expr = f"""
      let
        stub = import {STUB};
        pkgs = stub // {{ cudaPackages_12 = stub.cudaPackagesAt {nix_str(f"{cuda}/")}; }};
        shell = import {tmp_path}/tree/nix/devshell.nix {{ inherit pkgs; }};
      in {{
        inherit (shell) shellHook env;
        toolkit = shell.passthru.cudaToolkit.outPath or null;
        oldCudaPath = pkgs.lib.makeLibraryPath (map (name: pkgs.cudaPackages_12.${{name}}) {json.dumps(OLD_CUDA_LIBS).replace(",", " ")});
      }}
    """
    shell = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)

    # The hook in bash, on a NixOS-like host: the driver's directory is /run/opengl-driver/lib.
    sysroot = tmp_path / "sysroot"
    (sysroot / "run/opengl-driver/lib").mkdir(parents=True)
    (sysroot / "run/opengl-driver/lib/libcuda.so.1").write_text("")
    (tmp_path / "hook.sh").write_text(shell["shellHook"])
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), "STACKGEN_QUIET": "1", "STACKGEN_SYSROOT": str(sysroot)}
    out = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", f'. "{tmp_path}/hook.sh"; printf "%s\\n%s" "$LD_LIBRARY_PATH" "$LIBRARY_PATH"'],
        check=True, capture_output=True, text=True, env=env,
    )
    assert out.stderr == ""
    ld_path, library_path = out.stdout.split("\n")
    return {
        "probe": probe, "wheel_lib": wheel_lib, "nix_lib": nix_lib, "cuda": cuda, "sysroot": sysroot, "shell": shell,
        "ld_path": ld_path, "library_path": library_path,
    }


def resolved_cudart(probe: Path, ld_path: str) -> Path:
    """Where glibc's loader resolves the probe's libcudart.so.12 under this LD_LIBRARY_PATH."""
    out = subprocess.run(
        [LD_SO, "--list", str(probe)], check=True, capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": ld_path},
    ).stdout
    lines = [line.split() for line in out.splitlines() if line.split()[:1] == [CUDART]]
    assert len(lines) == 1 and lines[0][1] == "=>", out
    return Path(lines[0][2]).resolve()


def dlopened(probe: Path, ld_path: str) -> dict:
    """Python (this test's own) dlopens the probe under LD_LIBRARY_PATH, as `import torch` does."""
    out = subprocess.run(
        [sys.executable, "-c", DLOPEN_PY, str(probe)], check=True, capture_output=True, text=True,
        env={"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": ld_path},
    ).stdout
    return json.loads(out)


def test_wheel_cudart_wins_over_the_dev_shell(loader_setup):
    s = loader_setup
    wheel_cudart = (s["wheel_lib"] / CUDART).resolve()
    nix_cudart = (s["nix_lib"] / CUDART).resolve()

    assert resolved_cudart(s["probe"], s["ld_path"]) == wheel_cudart
    loaded = dlopened(s["probe"], s["ld_path"])
    assert loaded == {"version": RUNTIME_VERSION[WHEEL_VERSION], "mapped": [str(wheel_cudart)]}
    # The loader path is the driver and the manylinux libraries, nothing else.
    assert s["ld_path"].split(":") == [
        f"{s['sysroot']}/run/opengl-driver/lib",
        "/nix/store/fake-gcc-lib/lib", "/nix/store/fake-zlib/lib", "/nix/store/fake-libGL/lib", "/nix/store/fake-glib/lib",
    ]

    # The old layout (the CUDA libraries after the manylinux ones) shadows the wheel: this is
    # what made `import torch` fail, and what this test fails on if it comes back.
    old = f"{s['ld_path']}:{s['shell']['oldCudaPath']}"
    assert str(s["nix_lib"]) in old.split(":")
    assert resolved_cudart(s["probe"], old) == nix_cudart
    assert dlopened(s["probe"], old) == {"version": RUNTIME_VERSION[NIX_VERSION], "mapped": [str(nix_cudart)]}


def test_toolkit_reaches_source_builds_but_not_the_loader(loader_setup):
    s = loader_setup
    toolkit = s["shell"]["toolkit"]
    env = s["shell"]["env"]
    assert env["CUDA_HOME"] == env["CUDA_PATH"] == env["CUDAToolkit_ROOT"] == toolkit
    # Link time: the toolkit's libraries and its driver stubs, ahead of what was there.
    assert s["library_path"] == f"{toolkit}/lib:{toolkit}/lib/stubs"
    # Run time: neither the toolkit nor any cudaPackages member.
    for entry in s["ld_path"].split(":"):
        assert not entry.startswith(toolkit) and not entry.startswith(str(s["cuda"])), entry


# --- What the toolkit join holds (stub-evaluated; the stub's outputs follow nixpkgs' cuda-modules).

def toolkit_outputs(name: str, outputs: list[str]) -> list[str]:
    return [f"/nix/store/fake-{name}" if o == "out" else f"/nix/store/fake-{name}-{o}" for o in outputs]


EXPECTED_JOIN = (
    toolkit_outputs("nvcc", ["out"])
    + toolkit_outputs("cudart", ["out", "dev", "include", "lib", "stubs"])
    + toolkit_outputs("cccl", ["out", "dev", "include"])
    + toolkit_outputs("cublas", ["out", "dev", "include", "lib", "stubs"])
    + toolkit_outputs("cudnn", ["out", "dev", "include", "lib"])
    + toolkit_outputs("nccl", ["out", "dev"])
)


def eval_toolkit(nix, tree: Path, lib: str = "") -> dict:
    lib_arg = f"lib = import {lib};" if lib else ""
    expr = f"""
      let shell = import {tree}/nix/devshell.nix {{ pkgs = import {STUB}; {lib_arg} }};
      in {{ inherit (shell) env shellHook; paths = map toString shell.passthru.cudaToolkit.paths; name = shell.passthru.cudaToolkit.name; }}
    """
    return json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)


@pytest.mark.parametrize("cuda", ["12", "13"])
def test_toolkit_join_holds_every_build_piece_but_the_big_static_archives(tmp_path, nix, cuda):
    render_text(GPU_SPEC.replace("{vendor: nvidia}", f"{{vendor: nvidia, cuda: '{cuda}'}}"), tmp_path)
    shell = eval_toolkit(nix, tmp_path)
    crt = toolkit_outputs("crt", ["out", "include"]) if cuda == "13" else []
    # cudart's static archive only: nvcc links the runtime statically by default.
    assert shell["paths"] == EXPECTED_JOIN + crt + ["/nix/store/fake-cudart-static"]
    assert shell["name"] == f"stackgen-cuda-toolkit-{cuda}"
    assert shell["env"]["CUDA_HOME"] == f"/nix/store/fake-join-stackgen-cuda-toolkit-{cuda}"


def test_toolkit_evaluates_with_the_real_nixpkgs_lib(tmp_path, nix, nixpkgs_lib):
    render_text(GPU_SPEC, tmp_path)
    shell = eval_toolkit(nix, tmp_path, str(nixpkgs_lib))
    assert shell["paths"] == EXPECTED_JOIN + ["/nix/store/fake-cudart-static"]
    assert "fake-cudart" not in shell["shellHook"].split("export LIBRARY_PATH")[0]


def test_spec_env_may_point_at_its_own_toolkit(tmp_path, nix):
    render_text(GPU_SPEC + "env:\n  CUDA_HOME: /opt/cuda\n", tmp_path)
    env = eval_toolkit(nix, tmp_path)["env"]
    assert env["CUDA_HOME"] == "/opt/cuda"
    assert env["CUDA_PATH"] == env["CUDAToolkit_ROOT"] == "/nix/store/fake-join-stackgen-cuda-toolkit-12"


def test_no_toolkit_without_an_nvidia_gpu(tmp_path, nix):
    render_text(GPU_SPEC.replace("gpu: {vendor: nvidia}\n", ""), tmp_path)
    expr = f"(import {tmp_path}/nix/devshell.nix {{ pkgs = import {STUB}; }})"
    shell = json.loads(nix("--eval", "--strict", "--json", "-E", f"let s = {expr}; in {{ inherit (s) env shellHook; p = s.passthru or null; }}").stdout)
    assert shell["p"] is None
    assert not {"CUDA_HOME", "CUDA_PATH", "CUDAToolkit_ROOT"} & set(shell["env"])
    assert "LIBRARY_PATH=" not in shell["shellHook"].replace("LD_LIBRARY_PATH=", "")


# --- The NixOS and home-manager modules put no CUDA library on a loader path either: nix-ld's
# NIX_LD_LIBRARY_PATH becomes LD_LIBRARY_PATH for every unpatched program (and its children),
# and a session LD_LIBRARY_PATH would reach every shell; either would shadow the wheels.

LOADER_VARIABLES = {"LD_LIBRARY_PATH", "NIX_LD_LIBRARY_PATH", "LD_PRELOAD"}


def walk(tree, path=()):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield path + (key,), value
            yield from walk(value, path + (key,))
    elif isinstance(tree, list):
        for item in tree:
            yield from walk(item, path)


def test_modules_put_no_cuda_library_on_a_loader_path(tmp_path, nix):
    from test_modules import CASES as MODULE_CASES, MODULES, module_cases, stub_eval

    gpu_cases = [(case, kind) for case, kind in module_cases() if "vendor: nvidia" in MODULE_CASES[case].read_text()]
    assert gpu_cases  # the golden specs include a GPU stack, so this checks something
    for case, kind in gpu_cases:
        tree_dir = tmp_path / case
        render_spec(MODULE_CASES[case], tree_dir)
        cfg = stub_eval(nix, tree_dir / MODULES[kind])
        for path, _ in walk(cfg):
            assert path[-1] not in LOADER_VARIABLES, (case, kind, path)
        libraries = cfg.get("programs", {}).get("nix-ld", {}).get("libraries", [])
        assert set(libraries) <= {"<nix-ld defaults>", "<package gcc-lib>", "<package zlib>", "<package libGL>", "<package glib>"}, (
            case, kind, libraries)
