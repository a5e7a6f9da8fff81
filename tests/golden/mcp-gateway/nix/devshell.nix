# The development shell of "mcp-gateway": Nix python + uv, CUDA 12 libraries, mirrors.
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
  # CUDA runtime libraries from nixpkgs; the driver itself (libcuda) comes from the host.
  cudaLibs = [
    cuda.cuda_cudart
    cuda.libcublas
    cuda.cudnn
    cuda.nccl
  ];

  # Linux only: those libraries on the loader path, ahead of anything already there.
  libraryHook = lib.optionalString pkgs.stdenv.hostPlatform.isLinux ''
    export LD_LIBRARY_PATH="${lib.makeLibraryPath (manylinuxLibs ++ cudaLibs)}''${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  '';
in
pkgs.mkShell {
  name = "mcp-gateway";

  packages = [
    python
    pkgs.uv
    cuda.cuda_nvcc
  ];

  env = {
    # uv uses the Nix python and never downloads its own.
    UV_PYTHON = python.interpreter;
    UV_PYTHON_DOWNLOADS = "never";
    # Where the stack's services are reached from this machine (services: in stack.yaml).
    CHAT_URL = "http://127.0.0.1:8080";
    CODER_URL = "http://127.0.0.1:8081";
    POSTGRES_URL = "postgresql://gateway@127.0.0.1:5432/gateway";
    DATABASE_URL = "postgresql://gateway@127.0.0.1:5432/gateway";
    REDIS_URL = "redis://127.0.0.1:6379";
    QDRANT_URL = "http://127.0.0.1:6333";
    REDIS_INSIGHT_URL = "http://127.0.0.1:5540";
    GATEWAY_URL = "http://127.0.0.1:8091";
  };

  shellHook = ''
    # A Python path from outside would leak into uv's virtualenvs.
    unset PYTHONPATH
    ${libraryHook}
    # Only the driver's own libraries are linked in, never the host's whole /usr/lib.
    source ${./driver-libs.sh}
    stackgen_use_driver "''${XDG_CACHE_HOME:-$HOME/.cache}/stackgen/mcp-gateway/driver"
    if [ -z "''${STACKGEN_QUIET:-}" ]; then
      echo "mcp-gateway dev shell: python ${python.version}, uv ${pkgs.uv.version}"
      if [ -n "$STACKGEN_DRIVER_DIR" ]; then
        echo "  GPU: NVIDIA driver libraries from $STACKGEN_DRIVER_DIR"
      else
        echo "  GPU: no NVIDIA driver (libcuda.so.1) found; CUDA programs will run on the CPU or fail"
      fi
      # Spec text (service hosts) reaches bash only as a quoted word.
      echo ${lib.escapeShellArg "  services: chat 127.0.0.1:8080, coder 127.0.0.1:8081, postgres 127.0.0.1:5432, redis 127.0.0.1:6379, qdrant 127.0.0.1:6333, redis-insight 127.0.0.1:5540, gateway 127.0.0.1:8091"}
      if command -v podman-compose >/dev/null; then echo ${lib.escapeShellArg "  start: podman-compose up -d    (compose.yaml)"}
      elif command -v docker >/dev/null; then echo ${lib.escapeShellArg "  start: docker compose up -d    (compose.yaml)"}
      else echo ${lib.escapeShellArg "  compose.yaml: install podman-compose (or docker compose) to start the services"}
      fi
      if command -v podman >/dev/null && command -v systemctl >/dev/null; then echo ${lib.escapeShellArg "  Quadlet: cp quadlet/* ~/.config/containers/systemd/ && systemctl --user daemon-reload && systemctl --user start mcp-gateway-chat mcp-gateway-coder mcp-gateway-postgres mcp-gateway-redis mcp-gateway-qdrant mcp-gateway-redis-insight mcp-gateway-gateway"}
      else echo ${lib.escapeShellArg "  quadlet/: the units need podman (>= 4.4) and systemd"}
      fi
    fi
  '';
}
