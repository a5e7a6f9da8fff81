# The development shell of "cpu-box": Nix python + uv, mirrors.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
{ pkgs, lib ? pkgs.lib }:
let
  python = pkgs.python313;

  # manylinux wheels installed by uv (torch, numpy, ...) expect these on the system.
  manylinuxLibs = [
    pkgs.stdenv.cc.cc.lib
    pkgs.zlib
    pkgs.libGL
    pkgs.glib
  ];

  # Linux only: the manylinux libraries on the loader path, ahead of anything already there.
  libraryHook = lib.optionalString pkgs.stdenv.hostPlatform.isLinux ''
    export LD_LIBRARY_PATH="${lib.makeLibraryPath manylinuxLibs}''${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  '';
in
pkgs.mkShell {
  name = "cpu-box";

  packages = [
    python
    pkgs.uv
    pkgs.git
  ];

  env = {
    # uv uses the Nix python and never downloads its own.
    UV_PYTHON = python.interpreter;
    UV_PYTHON_DOWNLOADS = "never";
    HF_ENDPOINT = "https://hf-mirror.com";
    # Where the stack's services are reached from this machine (services: in stack.yaml).
    OLLAMA_URL = "http://127.0.0.1:11434";
    OLLAMA_BASE_URL = "http://127.0.0.1:11434";
    OLLAMA_HOST = "127.0.0.1:11434";
    LLAMA_CPP_URL = "http://127.0.0.1:8081";
    OPENAI_BASE_URL = "http://127.0.0.1:8081/v1";
    POSTGRES_URL = "postgresql://app@127.0.0.1:5432/app";
    POSTGRES_PASSWORD_FILE = "/run/secrets/postgres-password";
    DATABASE_URL = "postgresql://app@127.0.0.1:5432/app";
    REDIS_URL = "redis://127.0.0.1:6379";
    REDIS_PASSWORD_FILE = "/run/secrets/redis-password";
    QDRANT_URL = "http://127.0.0.1:6333";
    QDRANT_API_KEY_FILE = "/run/secrets/qdrant.env";
  };

  shellHook = ''
    # A Python path from outside would leak into uv's virtualenvs.
    unset PYTHONPATH
    ${libraryHook}
    if [ -z "''${STACKGEN_QUIET:-}" ]; then
      echo "cpu-box dev shell: python ${python.version}, uv ${pkgs.uv.version}"
      echo "  GPU: none (gpu.vendor: none)"
      # Spec text (service hosts) reaches bash only as a quoted word.
      echo ${lib.escapeShellArg "  services: ollama 127.0.0.1:11434, llama-cpp 127.0.0.1:8081, postgres 0.0.0.0:5432, redis 0.0.0.0:6379, qdrant 0.0.0.0:6333"}
      if [ -e /etc/NIXOS ]; then echo ${lib.escapeShellArg "  NixOS: import nix/nixos.nix (nixosModules.default) in your configuration, then nixos-rebuild switch"}
      fi
    fi
  '';
}
