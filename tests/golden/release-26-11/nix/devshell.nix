# The development shell of "zokor": Nix python + uv, mirrors.
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
  name = "zokor";

  packages = [
    python
    pkgs.uv
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
    POSTGRES_URL = "postgresql://metrics@127.0.0.1:5432/metrics";
    DATABASE_URL = "postgresql://metrics@127.0.0.1:5432/metrics";
  };

  shellHook = ''
    # A Python path from outside would leak into uv's virtualenvs.
    unset PYTHONPATH
    ${libraryHook}
    if [ -z "''${STACKGEN_QUIET:-}" ]; then
      echo "zokor dev shell: python ${python.version}, uv ${pkgs.uv.version}"
      echo "  GPU: none (gpu.vendor: none)"
      # Spec text (service hosts) reaches bash only as a quoted word.
      echo ${lib.escapeShellArg "  services: ollama 127.0.0.1:11434, llama-cpp 127.0.0.1:8080, postgres 127.0.0.1:5432"}
      if [ -e /etc/NIXOS ]; then echo ${lib.escapeShellArg "  NixOS: import nix/nixos.nix (nixosModules.default) in your configuration, then nixos-rebuild switch"}
      fi
    fi
  '';
}
