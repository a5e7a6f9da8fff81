"""The rendered shell code, run by real bash: driver discovery and the mirror switch."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import render_text

GPU_SPEC = "version: 1\nname: gpu\nsystems: [x86_64-linux]\ngpu: {vendor: nvidia}\ntargets: [devshell, mirrors]\n"


def bash(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, env={**base, **(env or {})}, check=True
    )


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


@pytest.fixture
def driver_script(tmp_path) -> Path:
    render_text(GPU_SPEC, tmp_path / "tree")
    return tmp_path / "tree" / "nix" / "driver-libs.sh"


def use_driver(script: Path, sysroot: Path, links: Path, ld: str = "/nix/store/x-zlib/lib") -> tuple[str, str]:
    out = bash(
        f'source "{script}"; stackgen_use_driver "{links}"; printf "%s\\n%s" "$STACKGEN_DRIVER_DIR" "$LD_LIBRARY_PATH"',
        {"STACKGEN_SYSROOT": str(sysroot), "LD_LIBRARY_PATH": ld},
    ).stdout
    found, path = out.split("\n", 1)
    return found, path


def test_nixos_driver_dir_is_used_directly(driver_script, tmp_path):
    root = tmp_path / "nixos"
    touch(root, "/run/opengl-driver/lib/libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1")
    found, path = use_driver(driver_script, root, tmp_path / "links")
    assert found == f"{root}/run/opengl-driver/lib"
    assert path == f"{root}/run/opengl-driver/lib:/nix/store/x-zlib/lib"
    assert not (tmp_path / "links").exists()


def test_debian_driver_is_linked_not_the_whole_libdir(driver_script, tmp_path):
    root = tmp_path / "debian"
    lib = "/usr/lib/x86_64-linux-gnu"
    touch(
        root,
        f"{lib}/libcuda.so.1",
        f"{lib}/libcuda.so.550.54.15",
        f"{lib}/libnvidia-ml.so.1",
        f"{lib}/libnvidia-ptxjitcompiler.so.1",
        f"{lib}/libc.so.6",
        f"{lib}/libssl.so.3",
        f"{lib}/libstdc++.so.6",
    )
    links = tmp_path / "cache" / "driver"
    found, path = use_driver(driver_script, root, links)
    assert found == f"{root}{lib}"
    assert path == f"{links}:/nix/store/x-zlib/lib"
    assert lib not in path
    linked = sorted(p.name for p in links.iterdir() if not p.name.startswith("."))
    assert linked == ["libcuda.so.1", "libcuda.so.550.54.15", "libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1"]
    assert all(os.readlink(links / name) == f"{root}{lib}/{name}" for name in linked)


def test_relinks_when_the_driver_changes_and_not_otherwise(driver_script, tmp_path):
    root = tmp_path / "debian"
    lib = "/usr/lib/x86_64-linux-gnu"
    touch(root, f"{lib}/libcuda.so.1", f"{lib}/libcuda.so.550.54.15")
    links = tmp_path / "links"
    use_driver(driver_script, root, links)
    stamp = (links / ".stamp").stat().st_mtime_ns
    use_driver(driver_script, root, links)
    assert (links / ".stamp").stat().st_mtime_ns == stamp, "a warm start must not relink"
    (root / lib.lstrip("/") / "libcuda.so.550.54.15").unlink()
    touch(root, f"{lib}/libcuda.so.560.35.03")
    use_driver(driver_script, root, links)
    assert sorted(p.name for p in links.iterdir() if not p.name.startswith(".")) == ["libcuda.so.1", "libcuda.so.560.35.03"]


def test_wsl_driver(driver_script, tmp_path):
    root = tmp_path / "wsl"
    touch(root, "/usr/lib/wsl/lib/libcuda.so.1", "/usr/lib/wsl/lib/libdxcore.so", "/usr/lib/wsl/lib/libnvidia-ml.so.1", "/usr/lib/wsl/lib/libd3d12.so")
    links = tmp_path / "links"
    found, path = use_driver(driver_script, root, links)
    assert found == f"{root}/usr/lib/wsl/lib"
    assert path.startswith(f"{links}:")
    assert sorted(p.name for p in links.iterdir() if not p.name.startswith(".")) == ["libcuda.so.1", "libdxcore.so", "libnvidia-ml.so.1"]


def test_driver_registered_in_ld_so_conf_d(driver_script, tmp_path):
    root = tmp_path / "custom"
    touch(root, "/opt/nvidia/lib64/libcuda.so.1")
    conf = root / "etc/ld.so.conf.d"
    conf.mkdir(parents=True)
    (conf / "nvidia.conf").write_text("# the driver\n  /opt/nvidia/lib64  \ninclude /etc/other/*.conf\n")
    found, _ = use_driver(driver_script, root, tmp_path / "links")
    assert found == f"{root}/opt/nvidia/lib64"


def test_no_driver_leaves_the_path_alone(driver_script, tmp_path):
    root = tmp_path / "empty"
    touch(root, "/usr/lib/x86_64-linux-gnu/libc.so.6")
    found, path = use_driver(driver_script, root, tmp_path / "links")
    assert found == ""
    assert path == "/nix/store/x-zlib/lib"
    assert not (tmp_path / "links").exists()


# --- env/mirrors.sh ---------------------------------------------------------------------------

VARS = ("NIX_CONFIG", "UV_DEFAULT_INDEX", "PIP_INDEX_URL", "HF_ENDPOINT", "STACKGEN_MIRRORS")


@pytest.fixture
def mirrors_sh(tmp_path) -> Path:
    render_text(
        "version: 1\nname: m\nmirrors:\n  nix: [{url: 'https://cache.example.org', key: 'cache.example.org-1:"
        + "A" * 43
        + "='}]\n  huggingface: https://hf.example.org\ntargets: [mirrors]\n",
        tmp_path / "tree",
    )
    return tmp_path / "tree" / "env" / "mirrors.sh"


def snapshot() -> str:
    # every shell variable and function, minus bash's own bookkeeping
    return '{ declare -p | grep -vE "^declare -[-a-zA-Z]* (BASH_|_=|PIPESTATUS|FUNCNAME|LINENO|RANDOM|SECONDS|SRANDOM|EPOCH|OLDPWD)"; declare -F; }'


def test_china_then_global_restores_the_shell_exactly(mirrors_sh):
    script = f"""
      {snapshot()} > /tmp/stackgen-before.$$
      source "{mirrors_sh}" china >/dev/null
      echo "NIX_CONFIG=$NIX_CONFIG"; echo "UV=$UV_DEFAULT_INDEX"; echo "PIP=$PIP_INDEX_URL"; echo "HF=$HF_ENDPOINT"; echo "MODE=$STACKGEN_MIRRORS"
      source "{mirrors_sh}" china >/dev/null
      source "{mirrors_sh}" global >/dev/null
      {snapshot()} > /tmp/stackgen-after.$$
      diff /tmp/stackgen-before.$$ /tmp/stackgen-after.$$ && echo SAME
      rm -f /tmp/stackgen-before.$$ /tmp/stackgen-after.$$
    """
    out = bash(script, {"NIX_CONFIG": "experimental-features = nix-command flakes", "PIP_INDEX_URL": "https://mine.example/simple"}).stdout
    assert (
        "NIX_CONFIG=experimental-features = nix-command flakes\n"
        "extra-substituters = https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store https://mirrors.ustc.edu.cn/nix-channels/store "
        "https://mirror.sjtu.edu.cn/nix-channels/store https://mirror.nju.edu.cn/nix-channels/store "
        "https://mirrors.bfsu.edu.cn/nix-channels/store https://cache.example.org\n"
        "extra-trusted-public-keys = cache.example.org-1:" + "A" * 43 + "=\n"
    ) in out
    assert "UV=https://pypi.tuna.tsinghua.edu.cn/simple\n" in out
    assert "PIP=https://pypi.tuna.tsinghua.edu.cn/simple\n" in out
    assert "HF=https://hf.example.org\n" in out
    assert "MODE=china\n" in out
    assert out.rstrip().endswith("SAME"), out


def test_global_without_a_switch_changes_nothing_and_show_prints(mirrors_sh):
    out = bash(f'source "{mirrors_sh}" global; source "{mirrors_sh}" show; echo "[${{HF_ENDPOINT-unset}}]"', {"HF_ENDPOINT": "https://own"}).stdout
    assert "HF_ENDPOINT=https://own" in out
    assert "UV_DEFAULT_INDEX (unset)" in out
    assert out.rstrip().endswith("[https://own]")


def test_mirrors_sh_refuses_to_run_as_a_program(mirrors_sh):
    proc = subprocess.run(["bash", str(mirrors_sh), "china"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "must be sourced" in proc.stderr


def test_unknown_profile_is_refused_with_status_2_and_changes_nothing(mirrors_sh):
    out = bash(f'source "{mirrors_sh}" chna; echo "status=$? [${{UV_DEFAULT_INDEX-unset}}] [${{_stackgen_mirrors_status-unset}}]"')
    assert out.stdout.strip() == "status=2 [unset] [unset]"
    assert "usage: source env/mirrors.sh china|global|show" in out.stderr
