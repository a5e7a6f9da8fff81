# Pull Ollama models for home-manager's `services.ollama`, which (unlike the NixOS module)
# has no `loadModels`: a user unit that waits for the server and pulls each model once.
# Part of stackgen; copied into each rendered tree.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkIf mkOption types;
  cfg = config.stackgen.ollamaModels;
  ollama = config.services.ollama;
  # A server listening on every address is reached on loopback.
  clientHost = if builtins.elem ollama.host [ "0.0.0.0" "::" "[::]" ] then "127.0.0.1" else ollama.host;
  pull = pkgs.writeShellScript "ollama-pull-models" ''
    set -eu
    export OLLAMA_HOST=${lib.escapeShellArg "${clientHost}:${toString ollama.port}"}
    for _ in {1..60}; do
      ${lib.getExe ollama.package} list >/dev/null 2>&1 && break
      sleep 1
    done
    for model in ${lib.escapeShellArgs cfg}; do
      ${lib.getExe ollama.package} pull "$model"
    done
  '';
in
{
  options.stackgen.ollamaModels = mkOption {
    type = types.listOf types.str;
    default = [ ];
    example = [ "llama3.2:3b" ];
    description = "Models to pull into the user's Ollama after it starts.";
  };

  config = mkIf (ollama.enable && cfg != [ ]) {
    systemd.user.services.ollama-models = {
      Unit = {
        Description = "Pull Ollama models";
        After = [ "ollama.service" ];
        Requires = [ "ollama.service" ];
      };
      Service = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${pull}";
      };
      Install.WantedBy = [ "default.target" ];
    };
  };
}
