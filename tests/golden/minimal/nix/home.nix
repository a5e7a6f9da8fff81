# home-manager module for the stack "hello-llm": packages, mirror variables, a user
# Ollama.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
# Import it into your home configuration (flake: inputs.<this flake>.homeModules.default).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkIf mkOption types;
in
{
  imports = [
    ./modules/home/ollama-models.nix
  ];

  config = {
    home.packages = [
      pkgs.python312
      pkgs.uv
    ];

    services.ollama = {
      enable = true;
      host = "127.0.0.1";
      port = 11434;
    };
    # Pulled by ollama-models.service once Ollama answers (./modules/home/ollama-models.nix).
    stackgen.ollamaModels = [ "llama3.2:1b" ];
  };
}
