# `nix run .#services`: the services of "cortex" as native processes under process-compose,
# from the Nix packages the NixOS target uses, in the dev shell's environment.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
{ pkgs, lib ? pkgs.lib }:
let
  python = pkgs.python312;
in
pkgs.writeShellApplication {
  name = "services";
  runtimeInputs = [
    python
    pkgs.uv
    pkgs.process-compose
    pkgs.bash
    pkgs.coreutils
    pkgs.gnused
    pkgs.gnugrep
    pkgs.curl
    pkgs.ollama
    pkgs.git
  ];
  text = ''
    # The dev shell's environment (nix/devshell.nix): its python, uv, mirrors and variables.
    # shellcheck disable=SC2016 # literal values: nothing in them is to expand
    export \
      UV_PYTHON_DOWNLOADS=${lib.escapeShellArg "never"}
    export UV_PYTHON=${python.interpreter}
    unset PYTHONPATH
    ${lib.optionalString pkgs.stdenv.hostPlatform.isLinux ''
      export LD_LIBRARY_PATH="${lib.makeLibraryPath [ pkgs.stdenv.cc.cc.lib pkgs.zlib pkgs.libGL pkgs.glib ]}''${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    ''}
    export STACKGEN_TREE=${./..}
    exec bash "$STACKGEN_TREE/nix/processes/services.sh" "$@"
  '';
}
