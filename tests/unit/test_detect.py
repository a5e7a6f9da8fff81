"""`stackgen detect` with NVML stood in for: pynvml's nvml* functions are replaced, the
rest of the code (error classes, parsing, the suggestions) is the real thing."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pynvml
import pytest
from click.testing import CliRunner

from stackgen import hardware
from stackgen.cli import cli

GIB = 1024**3


def gpu(name, cap, total_gib, free_gib=None, uuid=None):
    return {"name": name, "cap": cap, "total": int(total_gib * GIB), "free": int((free_gib or total_gib * 0.9) * GIB), "uuid": uuid or f"GPU-{name[-4:]}"}


class FakeNvml:
    """Installs stand-ins for the NVML entry points detect() calls."""

    def __init__(self, monkeypatch, gpus, driver="550.54.14", cuda=12040, fail=None, v2=True):
        self.gpus, self.calls, self.fail = gpus, [], fail or {}
        self.shutdowns = 0
        names = {
            "nvmlInit": lambda: self._call("nvmlInit"),
            "nvmlShutdown": self._shutdown,
            "nvmlDeviceGetCount": lambda: self._call("nvmlDeviceGetCount", len(gpus)),
            "nvmlSystemGetDriverVersion": lambda: self._call("nvmlSystemGetDriverVersion", driver),
            "nvmlSystemGetCudaDriverVersion": lambda: self._call("nvmlSystemGetCudaDriverVersion", cuda),
            "nvmlDeviceGetHandleByIndex": lambda i: self._call("nvmlDeviceGetHandleByIndex", i),
            "nvmlDeviceGetName": lambda h: self._call("nvmlDeviceGetName", gpus[h]["name"]),
            "nvmlDeviceGetUUID": lambda h: self._call("nvmlDeviceGetUUID", gpus[h]["uuid"]),
            "nvmlDeviceGetCudaComputeCapability": lambda h: self._call("nvmlDeviceGetCudaComputeCapability", gpus[h]["cap"]),
            "nvmlDeviceGetMemoryInfo": lambda h, version=None: self._call(
                "nvmlDeviceGetMemoryInfo", SimpleNamespace(total=gpus[h]["total"], free=gpus[h]["free"], used=gpus[h]["total"] - gpus[h]["free"])
            ),
        }
        if v2:
            names["nvmlSystemGetCudaDriverVersion_v2"] = lambda: self._call("nvmlSystemGetCudaDriverVersion_v2", cuda)
        else:  # a driver without the _v2 entry point
            names["nvmlSystemGetCudaDriverVersion_v2"] = lambda: self._raise(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        for name, fn in names.items():
            monkeypatch.setattr(pynvml, name, fn)

    def _raise(self, code):
        raise pynvml.NVMLError(code)

    def _call(self, name, value=None):
        self.calls.append(name)
        if name in self.fail:
            raise pynvml.NVMLError(self.fail[name])
        return value

    def _shutdown(self):
        self.shutdowns += 1


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_one_gpu(monkeypatch):
    FakeNvml(monkeypatch, [gpu("NVIDIA GeForce RTX 4090", (8, 9), 24, 23, "GPU-4f9e2c1a")])
    found = hardware.detect()
    assert found.found and found.driver_version == "550.54.14" and found.cuda_driver_version == "12.4"
    assert found.gpus[0].uuid == "GPU-4f9e2c1a" and found.gpus[0].compute_capability == "8.9"
    assert found.gpu_block() == {"vendor": "nvidia", "cuda": "12", "capabilities": ["8.9"]}
    models = [m["ollama"] for m in found.models()]
    # 24 GiB less 10% headroom is 21.6 GiB: the 14b models fit, the 32b ones (23 GiB) do not
    assert models[0] in ("qwen2.5:14b", "qwen2.5-coder:14b") and "qwen2.5-coder:32b" not in models
    assert models[-1] == "llama3.2:1b"

    result = run("detect")
    assert result.exit_code == 0
    assert "driver 550.54.14, CUDA 12.4" in result.output
    assert "NVIDIA GeForce RTX 4090" in result.output and "24.0 GiB" in result.output and "23.0 GiB" in result.output
    assert 'gpu:\n  vendor: nvidia\n  cuda: "12"\n  capabilities: ["8.9"]\n' in result.output
    assert "qwen2.5-coder-14b-instruct-q4_k_m.gguf" in result.output


def test_two_gpus_of_different_sizes(monkeypatch):
    FakeNvml(monkeypatch, [gpu("NVIDIA GeForce RTX 3060", (8, 6), 12), gpu("NVIDIA H100 80GB HBM3", (9, 0), 80)], driver="580.65.06", cuda=13000)
    data = json.loads(run("detect", "--json").output)
    assert [g["name"] for g in data["gpus"]] == ["NVIDIA GeForce RTX 3060", "NVIDIA H100 80GB HBM3"]
    assert [g["index"] for g in data["gpus"]] == [0, 1]
    assert data["gpus"][1]["memory_total"] == 80 * GIB
    # the driver runs CUDA 13 and both GPUs are Turing or newer
    assert data["gpu_block"] == {"vendor": "nvidia", "cuda": "13", "capabilities": ["8.6", "9.0"]}
    # models are sized against the largest card: 72 GiB budget
    assert data["models"][0]["ollama"] == "qwen2.5:72b"
    assert data["cuda_driver_version"] == "13.0" and data["warnings"] == []


def test_old_driver_and_old_gpu(monkeypatch):
    FakeNvml(monkeypatch, [gpu("NVIDIA GeForce GTX 1080", (6, 1), 8)], driver="470.256.02", cuda=11040, v2=False)
    found = hardware.detect()
    assert found.cuda_driver_version == "11.4"  # read through the pre-_v2 entry point
    assert found.gpu_block() == {"vendor": "nvidia", "cuda": "12", "capabilities": ["6.1"], "open": False}
    assert any("runs CUDA 11.4 at most" in w and "update the NVIDIA driver" in w for w in found.warnings)
    result = run("detect")
    assert result.exit_code == 0
    assert "warning: driver 470.256.02 runs CUDA 11.4 at most" in result.output
    assert "  open: false\n" in result.output


def test_cuda13_driver_with_a_pascal_gpu_stays_on_cuda12(monkeypatch):
    FakeNvml(monkeypatch, [gpu("Tesla P100", (6, 0), 16), gpu("NVIDIA L4", (8, 9), 24)], driver="580.65.06", cuda=13000)
    block = hardware.detect().gpu_block()
    assert block == {"vendor": "nvidia", "cuda": "12", "capabilities": ["6.0", "8.9"], "open": False}


@pytest.mark.parametrize(
    "code, reason",
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1) is not installed"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "the NVIDIA kernel driver is not loaded"),
        (pynvml.NVML_ERROR_GPU_NOT_FOUND, "NVML sees no GPU"),
    ],
)
def test_no_gpu_is_a_normal_answer(monkeypatch, code, reason):
    fake = FakeNvml(monkeypatch, [], fail={"nvmlInit": code})
    result = run("detect")
    assert result.exit_code == 0
    assert result.output.startswith("no NVIDIA GPU found (") and reason in result.output
    data = json.loads(run("detect", "--json").output)
    assert data["found"] is False and reason in data["reason"] and data["gpu_block"] is None and data["models"] == []
    assert fake.calls == ["nvmlInit", "nvmlInit"]


def test_driver_without_gpus(monkeypatch):
    fake = FakeNvml(monkeypatch, [])
    result = run("detect")
    assert result.exit_code == 0 and result.output.startswith("no NVIDIA GPU found (the NVIDIA driver is loaded but sees no GPU)")
    assert fake.shutdowns == 1


@pytest.mark.parametrize(
    "where, code, message, hint",
    [
        ("nvmlInit", pynvml.NVML_ERROR_NO_PERMISSION, "Insufficient Permissions", "cannot open /dev/nvidia*"),
        ("nvmlInit", pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "version mismatch", "reboot"),
        ("nvmlInit", pynvml.NVML_ERROR_UNKNOWN, "Unknown Error", "run nvidia-smi"),
        ("nvmlDeviceGetMemoryInfo", pynvml.NVML_ERROR_GPU_IS_LOST, "GPU is lost", "fell off the bus"),
        ("nvmlDeviceGetCount", pynvml.NVML_ERROR_NO_PERMISSION, "Insufficient Permissions", "cannot open /dev/nvidia*"),
    ],
)
def test_unreadable_gpu_is_exit_1_with_a_hint(monkeypatch, where, code, message, hint):
    fake = FakeNvml(monkeypatch, [gpu("NVIDIA L4", (8, 9), 24)], fail={where: code})
    result = CliRunner().invoke(cli, ["detect"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), "no traceback reaches the user"
    assert result.stderr.startswith("error: NVML cannot read the GPUs: ") and message in result.stderr
    assert "hint: " in result.stderr and hint in result.stderr
    if where != "nvmlInit":
        assert fake.shutdowns == 1, "NVML is shut down after a failed reading"


def test_without_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    result = run("detect")
    assert result.exit_code == 0 and "nvidia-ml-py (pynvml) is not installed" in result.output


def test_this_host_never_raises():
    """The real NVML: either a reading or "no NVIDIA GPU found", exit 0."""
    result = run("detect", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["found"] is bool(data["gpus"])


def test_models_that_fit_honours_the_headroom():
    assert hardware.models_that_fit(int(2.3 * GIB)) == [{"ollama": "llama3.2:1b", "gguf": "llama-3.2-1b-instruct-q4_k_m.gguf", "vram_gib": 2.0}]
    assert hardware.models_that_fit(int(2.0 * GIB)) == []  # 2.0 GiB needed, only 1.8 usable
