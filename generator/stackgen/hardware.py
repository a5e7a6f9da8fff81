"""What the host's NVIDIA GPUs can do, read through NVML (nvidia-ml-py, imported lazily).

`detect()` never raises for a host without NVIDIA hardware: no library, no driver or no GPU
is a normal answer (`Detection.found` is False, `reason` says which). NVML errors that mean
"there is a GPU but it cannot be read" (no permission, driver/library mismatch, ...) raise a
StackError with a hint. Everything derived from the reading (the spec's `gpu:` block, the
models that fit) is plain Python, so it is tested without NVML.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import Problem, StackError

MIB = 1024 * 1024
GIB = 1024 * MIB

# The lowest compute capability each CUDA major still builds for (CUDA 13 dropped
# Maxwell, Pascal and Volta), and the driver branch that first runs it.
CUDA_MIN_CAPABILITY = {"12": (5, 0), "13": (7, 5)}
CUDA_MIN_DRIVER = {"12": "525.60", "13": "580"}
OPEN_MODULE_MIN_CAPABILITY = (7, 5)  # hardware.nvidia.open: Turing and newer

# Models a stack commonly serves, with what they need in VRAM at their default 4-bit
# quantisation with a 4k context (weights + KV cache + CUDA context), in GiB. The GGUF
# name is the file llama.cpp loads for the same model.
MODELS: tuple[tuple[str, str, float], ...] = (
    ("llama3.2:1b", "llama-3.2-1b-instruct-q4_k_m.gguf", 2.0),
    ("llama3.2:3b", "llama-3.2-3b-instruct-q4_k_m.gguf", 3.5),
    ("qwen2.5:7b", "qwen2.5-7b-instruct-q4_k_m.gguf", 6.0),
    ("qwen2.5-coder:7b", "qwen2.5-coder-7b-instruct-q4_k_m.gguf", 6.0),
    ("llama3.1:8b", "meta-llama-3.1-8b-instruct-q4_k_m.gguf", 6.5),
    ("qwen2.5:14b", "qwen2.5-14b-instruct-q4_k_m.gguf", 11.0),
    ("qwen2.5-coder:14b", "qwen2.5-coder-14b-instruct-q4_k_m.gguf", 11.0),
    ("qwen2.5:32b", "qwen2.5-32b-instruct-q4_k_m.gguf", 23.0),
    ("qwen2.5-coder:32b", "qwen2.5-coder-32b-instruct-q4_k_m.gguf", 23.0),
    ("llama3.3:70b", "llama-3.3-70b-instruct-q4_k_m.gguf", 46.0),
    ("qwen2.5:72b", "qwen2.5-72b-instruct-q4_k_m.gguf", 50.0),
)
HEADROOM = 0.10  # keep a tenth of the card free for the desktop, other processes, longer contexts


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    uuid: str
    compute_capability: str  # "8.9"
    memory_total: int  # bytes
    memory_free: int  # bytes

    @property
    def capability(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


@dataclass(frozen=True)
class Detection:
    found: bool
    reason: str = ""  # why nothing was found
    driver_version: str | None = None
    cuda_driver_version: str | None = None  # the newest CUDA the driver runs, "12.4"
    gpus: tuple[GpuInfo, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def gpu_block(self) -> dict | None:
        return suggest_gpu_block(self) if self.found else None

    def models(self) -> list[dict]:
        if not self.found:
            return []
        return models_that_fit(max(g.memory_total for g in self.gpus))

    def as_json(self) -> dict:
        return {
            "found": self.found,
            "reason": self.reason or None,
            "driver_version": self.driver_version,
            "cuda_driver_version": self.cuda_driver_version,
            "gpus": [asdict(g) for g in self.gpus],
            "gpu_block": self.gpu_block(),
            "models": self.models(),
            "warnings": list(self.warnings),
        }


# NVML errors that mean "no NVIDIA GPU here": a normal answer, not a failure.
_NOT_FOUND = {
    "NVML_ERROR_LIBRARY_NOT_FOUND": "the NVIDIA driver's NVML library (libnvidia-ml.so.1) is not installed",
    "NVML_ERROR_DRIVER_NOT_LOADED": "the NVIDIA kernel driver is not loaded",
    "NVML_ERROR_GPU_NOT_FOUND": "NVML sees no GPU",
}
# NVML errors that mean "there is an NVIDIA GPU but it cannot be read": exit 1 with a fix.
_HINTS = {
    "NVML_ERROR_NO_PERMISSION": "this user cannot open /dev/nvidia*; check the device permissions (group 'video' on some distributions)",
    "NVML_ERROR_LIB_RM_VERSION_MISMATCH": "the driver library and the loaded kernel module differ (a driver update without a reboot): reboot",
    "NVML_ERROR_GPU_IS_LOST": "a GPU fell off the bus; check dmesg and reboot",
    "NVML_ERROR_RESET_REQUIRED": "a GPU needs a reset; reboot",
    "NVML_ERROR_CORRUPTED_INFOROM": "a GPU's infoROM is corrupted; see nvidia-smi -q",
    "NVML_ERROR_INSUFFICIENT_POWER": "a GPU's external power cable is not connected",
}


def _error_name(pynvml, exc) -> str:
    for name in _NOT_FOUND.keys() | _HINTS.keys():
        if getattr(exc, "value", None) == getattr(pynvml, name, object()):
            return name
    return ""


def detect() -> Detection:
    """Read every GPU through NVML. See the module docstring for what raises."""
    try:
        import pynvml
    except ImportError:
        return Detection(False, "nvidia-ml-py (pynvml) is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return _nvml_failure(pynvml, exc)
    try:
        return _read(pynvml)
    except pynvml.NVMLError as exc:
        return _nvml_failure(pynvml, exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _nvml_failure(pynvml, exc) -> Detection:
    name = _error_name(pynvml, exc)
    if name in _NOT_FOUND:
        return Detection(False, _NOT_FOUND[name])
    hint = _HINTS.get(name, "run nvidia-smi to see what the driver reports")
    raise StackError(Problem(f"NVML cannot read the GPUs: {exc}", hint=hint))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read(pynvml) -> Detection:
    count = pynvml.nvmlDeviceGetCount()
    if count == 0:
        return Detection(False, "the NVIDIA driver is loaded but sees no GPU")
    driver = _text(pynvml.nvmlSystemGetDriverVersion())
    warnings: list[str] = []
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
    except pynvml.NVMLError:  # drivers older than the _v2 entry point
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
    cuda_version = f"{cuda // 1000}.{cuda % 1000 // 10}"
    gpus = []
    for index in range(count):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        gpus.append(
            GpuInfo(
                index=index,
                name=_text(pynvml.nvmlDeviceGetName(handle)),
                uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                compute_capability=f"{major}.{minor}",
                memory_total=int(memory.total),
                memory_free=int(memory.free),
            )
        )
    if cuda // 1000 < 12:
        warnings.append(
            f"driver {driver} runs CUDA {cuda_version} at most; nixpkgs' cudaPackages need CUDA 12 "
            f"(driver >= {CUDA_MIN_DRIVER['12']}): update the NVIDIA driver"
        )
    too_old = [g for g in gpus if g.capability < CUDA_MIN_CAPABILITY["12"]]
    for gpu in too_old:
        warnings.append(f"GPU {gpu.index} ({gpu.name}, compute capability {gpu.compute_capability}) is not supported by CUDA 12")
    return Detection(True, driver_version=driver, cuda_driver_version=cuda_version, gpus=tuple(gpus), warnings=tuple(warnings))


def suggest_gpu_block(det: Detection) -> dict:
    """The spec's `gpu:` block for this host: the newest CUDA major that both the driver and
    every GPU support, the GPUs' capabilities, and the open kernel module where it works."""
    driver_major = int(det.cuda_driver_version.split(".")[0])
    oldest = min(g.capability for g in det.gpus)
    cuda = "12"
    if driver_major >= 13 and oldest >= CUDA_MIN_CAPABILITY["13"]:
        cuda = "13"
    caps = sorted({g.compute_capability for g in det.gpus}, key=lambda c: tuple(int(p) for p in c.split(".")))
    block: dict = {"vendor": "nvidia", "cuda": cuda, "capabilities": caps}
    if oldest < OPEN_MODULE_MIN_CAPABILITY:
        block["open"] = False
    return block


def models_that_fit(vram_bytes: int) -> list[dict]:
    """The table's models that fit in `vram_bytes` with HEADROOM to spare, largest first."""
    budget = vram_bytes * (1 - HEADROOM) / GIB
    fit = [{"ollama": o, "gguf": g, "vram_gib": need} for o, g, need in MODELS if need <= budget]
    return sorted(fit, key=lambda m: -m["vram_gib"])


def gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"
