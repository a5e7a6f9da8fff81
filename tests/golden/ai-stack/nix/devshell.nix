# The development shell of "ai-stack": Nix python + uv, CUDA 12 toolkit, mirrors.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
{ pkgs, lib ? pkgs.lib }:
let
  python = pkgs.python312;
  cuda = pkgs.cudaPackages_12;

  # manylinux wheels installed by uv (torch, numpy, ...) expect these on the system.
  manylinuxLibs = [
    pkgs.stdenv.cc.cc.lib
    pkgs.zlib
    pkgs.libGL
    pkgs.glib
  ];
  # The CUDA toolkit, for source builds only (nvcc, llama-cpp-python with CUDA, CMake's
  # FindCUDAToolkit, torch's cpp_extension): its pieces joined into one prefix laid out like a
  # runfile install. Every output goes in except the large static archives, but cudart's, which
  # nvcc links by default (`--cudart static`) and CMake's CUDA::cudart_static needs.
  toolkitOutputs =
    p: map (output: p.${output}) (builtins.filter (output: output != "static") (p.outputs or [ "out" ]));
  cudaToolkit = pkgs.symlinkJoin {
    name = "stackgen-cuda-toolkit-12";
    paths =
      lib.concatMap toolkitOutputs [
        cuda.cuda_nvcc
        cuda.cuda_cudart
        cuda.cuda_cccl
        cuda.libcublas
        cuda.cudnn
        cuda.nccl
      ]
      ++ lib.optional (cuda.cuda_cudart ? static) cuda.cuda_cudart.static;
  };

  # Linux only: the manylinux libraries on the loader path, ahead of anything already there.
  # Nothing from the CUDA toolkit goes there: the loader searches LD_LIBRARY_PATH before an
  # object's RUNPATH, so a nixpkgs libcudnn/libnccl/libcublas/libcudart there would shadow the
  # nvidia-*-cu12 wheels that torch finds through its RUNPATH, and `import torch` would fail
  # (`undefined symbol: ncclCommRegister`, cuDNN version errors) whenever the versions differ.
  # Only the host driver joins them there (driver-libs.sh, in the shellHook).
  libraryHook = lib.optionalString pkgs.stdenv.hostPlatform.isLinux ''
    export LD_LIBRARY_PATH="${lib.makeLibraryPath manylinuxLibs}''${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # Source builds link against the toolkit: LIBRARY_PATH is read by the compiler driver at
    # link time only, never by the runtime loader. The stubs (libcuda.so) let a program link
    # without a driver; the host driver ahead on LD_LIBRARY_PATH is what runs.
    export LIBRARY_PATH="${cudaToolkit}/lib:${cudaToolkit}/lib/stubs''${LIBRARY_PATH:+:$LIBRARY_PATH}"
  '';
in
pkgs.mkShell {
  name = "ai-stack";

  packages = [
    python
    pkgs.uv
    cuda.cuda_nvcc
    pkgs.git
    pkgs.curl
    pkgs.jq
    pkgs.ripgrep
  ];

  env = {
    # uv uses the Nix python and never downloads its own.
    UV_PYTHON = python.interpreter;
    UV_PYTHON_DOWNLOADS = "never";
    UV_DEFAULT_INDEX = "https://pypi.tuna.tsinghua.edu.cn/simple";
    PIP_INDEX_URL = "https://pypi.tuna.tsinghua.edu.cn/simple";
    HF_ENDPOINT = "https://hf-mirror.com";
    # Where the stack's services are reached from this machine (services: in stack.yaml).
    OLLAMA_URL = "http://127.0.0.1:11434";
    OLLAMA_BASE_URL = "http://127.0.0.1:11434";
    OLLAMA_HOST = "127.0.0.1:11434";
    LLAMA_CPP_URL = "http://127.0.0.1:8080";
    OPENAI_BASE_URL = "http://127.0.0.1:8080/v1";
    POSTGRES_URL = "postgresql://aidb@127.0.0.1:5432/aidb";
    DATABASE_URL = "postgresql://aidb@127.0.0.1:5432/aidb";
    REDIS_URL = "redis://127.0.0.1:6379";
    QDRANT_URL = "http://127.0.0.1:6333";
    OPEN_WEBUI_URL = "http://127.0.0.1:3000";
    # Where source builds find the CUDA toolkit (never on LD_LIBRARY_PATH: see libraryHook).
    CUDA_HOME = "${cudaToolkit}";
    CUDA_PATH = "${cudaToolkit}";
    CUDAToolkit_ROOT = "${cudaToolkit}";
    PROJECT_MODE = "dev";
  };

  # `nix build .#devShells.<system>.default.cudaToolkit` fetches the toolkit ahead of time.
  passthru = { inherit cudaToolkit; };

  shellHook = ''
    # A Python path from outside would leak into uv's virtualenvs.
    unset PYTHONPATH
    ${libraryHook}
    # Only the driver's own libraries are linked in, never the host's whole /usr/lib.
    source ${./driver-libs.sh}
    stackgen_use_driver "''${XDG_CACHE_HOME:-$HOME/.cache}/stackgen/ai-stack/driver"
    if [ -z "''${STACKGEN_QUIET:-}" ]; then
      echo "ai-stack dev shell: python ${python.version}, uv ${pkgs.uv.version}"
      if [ -n "$STACKGEN_DRIVER_DIR" ]; then
        echo "  GPU: NVIDIA driver libraries from $STACKGEN_DRIVER_DIR"
      else
        echo "  GPU: no NVIDIA driver (libcuda.so.1) found; CUDA programs will run on the CPU or fail"
      fi
      # Spec text (service hosts) reaches bash only as a quoted word.
      echo ${lib.escapeShellArg "  services: ollama 127.0.0.1:11434, llama-cpp 127.0.0.1:8080, postgres 127.0.0.1:5432, redis 127.0.0.1:6379, qdrant 127.0.0.1:6333, open-webui 127.0.0.1:3000"}
      if command -v podman-compose >/dev/null; then echo ${lib.escapeShellArg "  start: podman-compose up -d    (compose.yaml)"}
      elif command -v docker >/dev/null; then echo ${lib.escapeShellArg "  start: docker compose up -d    (compose.yaml)"}
      else echo ${lib.escapeShellArg "  compose.yaml: install podman-compose (or docker compose) to start the services"}
      fi
      if command -v podman >/dev/null && command -v systemctl >/dev/null; then echo ${lib.escapeShellArg "  Quadlet: cp quadlet/* ~/.config/containers/systemd/ && systemctl --user daemon-reload && systemctl --user start ai-stack-ollama ai-stack-llama-cpp ai-stack-postgres ai-stack-redis ai-stack-qdrant ai-stack-open-webui"}
      else echo ${lib.escapeShellArg "  quadlet/: the units need podman (>= 4.4) and systemd"}
      fi
      if command -v nix >/dev/null; then echo ${lib.escapeShellArg "  start: nix run .#services    (native processes under process-compose; -- down stops them)"}
      fi
      if [ -e /etc/NIXOS ]; then echo ${lib.escapeShellArg "  NixOS: import nix/nixos.nix (nixosModules.default) in your configuration, then nixos-rebuild switch"}
      fi
    fi
  '';
}
