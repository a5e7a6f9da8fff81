"""Real Nix: every generated .nix file parses, and spec strings survive evaluation byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import golden_cases, render_spec, render_text
from stackgen.spec import load_spec
from stackgen.spec.model import NIX_TARGETS

CASES = golden_cases()

HOSTILE = [
    'quote " inside',
    "back\\slash \\n not a newline",
    "interp ${x} and $${y} and $x and ${builtins.abort \"no\"}",
    "indented '' string '''' marks",
    "dollar at end $",
    "line one\nline two\n",
    "tab\there",
    "unicode: 中文 — émoji 🚀 — ñ",
    "",
]


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_nix_file_parses(case, tmp_path, nix):
    files = render_spec(CASES[case], tmp_path)
    nix_files = [p for p in files if p.endswith(".nix")]
    if set(NIX_TARGETS) & set(load_spec(CASES[case], CASES[case].name).targets):
        assert "flake.nix" in nix_files
    else:  # a containers-only spec renders no Nix at all
        assert not nix_files
    for rel in nix_files:
        nix("--parse", str(tmp_path / rel))


# A stand-in for nixpkgs, enough to evaluate nix/devshell.nix without it: mkShell returns its
# arguments, packages are strings. The values under test never pass through these stubs.
STUB_PKGS = (Path(__file__).parent / "stub-pkgs.nix").read_text()


def spec_with(description: str, value: str) -> str:
    return (
        "version: 1\nname: escape-test\n"
        f"description: {json.dumps(description, ensure_ascii=False)}\n"
        f"env:\n  TRICKY: {json.dumps(value, ensure_ascii=False)}\n  PLAIN: ok\n"
        "packages: [git]\ntargets: [devshell]\n"
    )


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_strings_survive_nix_evaluation(value, tmp_path, nix):
    description = "desc: " + value if "\n" not in value else value + "tail"
    render_text(spec_with(description, value), tmp_path)
    got = nix("--eval", "--strict", "--json", "-E", f"(import {tmp_path}/flake.nix).description")
    assert json.loads(got.stdout) == description
    stub = tmp_path / "stub-pkgs.nix"
    stub.write_text(STUB_PKGS)
    got = nix("--eval", "--strict", "--json", "-E", f"(import {tmp_path}/nix/devshell.nix {{ pkgs = import {stub}; }}).env")
    env = json.loads(got.stdout)
    assert env["TRICKY"] == value
    assert env["PLAIN"] == "ok"
    assert env["UV_PYTHON"] == "/nix/store/fake-python/bin/python3.12"
    assert env["UV_PYTHON_DOWNLOADS"] == "never"


def test_devshell_evaluates_with_gpu_and_mirrors(tmp_path, nix):
    files = render_text(
        "version: 1\nname: gpu\nsystems: [x86_64-linux]\nmirrors: {region: china}\n"
        "gpu: {vendor: nvidia, cuda: '13', capabilities: ['8.9', '9.0']}\ntargets: [devshell]\n",
        tmp_path,
    )
    assert "nix/driver-libs.sh" in files
    stub = tmp_path / "stub-pkgs.nix"
    stub.write_text(STUB_PKGS)
    got = nix("--eval", "--strict", "--json", "-E", f"with (import {tmp_path}/nix/devshell.nix {{ pkgs = import {stub}; }}); {{ inherit env shellHook; }}")
    shell = json.loads(got.stdout)
    assert shell["env"]["UV_DEFAULT_INDEX"] == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert shell["env"]["PIP_INDEX_URL"] == "https://pypi.tuna.tsinghua.edu.cn/simple"
    assert shell["env"]["HF_ENDPOINT"] == "https://hf-mirror.com"
    hook = shell["shellHook"]
    assert "/nix/store/fake-zlib/lib" in hook
    # No nixpkgs CUDA library on the loader path (tests/nix/test_cuda_loader.py runs the loader).
    assert "fake-cudart" not in hook and "fake-cudnn" not in hook and "fake-nccl" not in hook
    assert 'LIBRARY_PATH="/nix/store/fake-join-stackgen-cuda-toolkit-13/lib:' in hook
    assert "unset PYTHONPATH" in hook
    assert "stackgen_use_driver" in hook
    assert "nvidia-smi" not in hook
    config = nix("--eval", "--strict", "--json", "-E", f"(import {tmp_path}/nix/nixpkgs-config.nix {{ lib = {{}}; }}).cudaCapabilities")
    assert json.loads(config.stdout) == ["8.9", "9.0"]


def test_unfree_predicate_allows_only_nvidia(tmp_path, nix, nixpkgs_lib):
    render_text("version: 1\nname: gpu\nsystems: [x86_64-linux]\ngpu: {vendor: nvidia}\ntargets: [devshell]\n", tmp_path)
    expr = f"""
      let
        lib = import {nixpkgs_lib};
        config = import {tmp_path}/nix/nixpkgs-config.nix {{ inherit lib; }};
        pkg = pname: license: {{ inherit pname; version = "1"; name = "${{pname}}-1"; meta.license = license; }};
        eula = name: {{ shortName = name; free = false; }};
      in map config.allowUnfreePredicate [
        (pkg "cuda_cudart" (eula "CUDA EULA"))
        (pkg "cudnn" [ (eula "cuDNN EULA") lib.licenses.mit ])
        (pkg "nvidia-x11" (eula "unfree"))
        (pkg "discord" (eula "unfree"))
        (pkg "mixed" [ (eula "CUDA EULA") (eula "unfree") ])
        (pkg "nolicense" [ ])
      ]
    """
    got = nix("--eval", "--strict", "--json", "-E", expr)
    assert json.loads(got.stdout) == [True, True, True, False, False, False]
