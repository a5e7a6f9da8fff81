# The development shell of "tutor": Nix python + uv, mirrors.
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
  name = "tutor";

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
    POSTGRES_URL = "postgresql://tutor@127.0.0.1:5432/tutor";
    DATABASE_URL = "postgresql://tutor@127.0.0.1:5432/tutor";
    REDIS_URL = "redis://127.0.0.1:6379";
    TUTOR_API_URL = "http://127.0.0.1:8000";
  };

  shellHook = ''
    # A Python path from outside would leak into uv's virtualenvs.
    unset PYTHONPATH
    ${libraryHook}
    if [ -z "''${STACKGEN_QUIET:-}" ]; then
      echo "tutor dev shell: python ${python.version}, uv ${pkgs.uv.version}"
      echo "  GPU: none (gpu.vendor: none)"
      # Spec text (service hosts) reaches bash only as a quoted word.
      echo ${lib.escapeShellArg "  services: ollama 127.0.0.1:11434, postgres 127.0.0.1:5432, redis 127.0.0.1:6379, tutor-api 127.0.0.1:8000"}
      if command -v podman-compose >/dev/null; then echo ${lib.escapeShellArg "  start: podman-compose up -d    (compose.yaml)"}
      elif command -v docker >/dev/null; then echo ${lib.escapeShellArg "  start: docker compose up -d    (compose.yaml)"}
      else echo ${lib.escapeShellArg "  compose.yaml: install podman-compose (or docker compose) to start the services"}
      fi
      if command -v podman >/dev/null && command -v systemctl >/dev/null; then echo ${lib.escapeShellArg "  Quadlet: cp quadlet/* ~/.config/containers/systemd/ && systemctl --user daemon-reload && systemctl --user start tutor-ollama tutor-postgres tutor-redis tutor-tutor-api"}
      else echo ${lib.escapeShellArg "  quadlet/: the units need podman (>= 4.4) and systemd"}
      fi
      if command -v nix >/dev/null; then echo ${lib.escapeShellArg "  start: nix run .#services    (native processes under process-compose; -- down stops them)"}
      fi
      if [ -e /etc/NIXOS ]; then echo ${lib.escapeShellArg "  NixOS: import nix/nixos.nix (nixosModules.default) in your configuration, then nixos-rebuild switch"}
      fi
    fi
  '';
}
