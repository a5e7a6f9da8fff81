# The development shell of "home-apps": Nix python + uv, mirrors.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
{ pkgs, lib ? pkgs.lib }:
let
  python = pkgs.python312;

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
  name = "home-apps";

  packages = [
    python
    pkgs.uv
  ];

  env = {
    # uv uses the Nix python and never downloads its own.
    UV_PYTHON = python.interpreter;
    UV_PYTHON_DOWNLOADS = "never";
    # Where the stack's services are reached from this machine (services: in stack.yaml).
    OLLAMA_URL = "http://127.0.0.1:11434";
    OLLAMA_BASE_URL = "http://127.0.0.1:11434";
    OLLAMA_HOST = "127.0.0.1:11434";
    POSTGRES_URL = "postgresql://notes@127.0.0.1:5432/notes";
    POSTGRES_PASSWORD_FILE = "/run/secrets/pg";
    DATABASE_URL = "postgresql://notes@127.0.0.1:5432/notes";
    REDIS_URL = "redis://127.0.0.1:6379";
    REDIS_PASSWORD_FILE = "/run/secrets/redis";
    QDRANT_URL = "http://127.0.0.1:6333";
    NOTES_URL = "http://127.0.0.1:8092";
  };

  shellHook = ''
    # A Python path from outside would leak into uv's virtualenvs.
    unset PYTHONPATH
    ${libraryHook}
    if [ -z "''${STACKGEN_QUIET:-}" ]; then
      echo "home-apps dev shell: python ${python.version}, uv ${pkgs.uv.version}"
      echo "  GPU: none (gpu.vendor: none)"
      # Spec text (service hosts) reaches bash only as a quoted word.
      echo ${lib.escapeShellArg "  services: ollama 127.0.0.1:11434, postgres 127.0.0.1:5432, redis 127.0.0.1:6379, qdrant 127.0.0.1:6333, notes 127.0.0.1:8092"}
    fi
  '';
}
