# home-manager module for the stack "edge": packages, mirror variables, a user
# Ollama and the other services as rootless Quadlet containers.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
# Import it into your home configuration (flake: inputs.<this flake>.homeManagerModules.default).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkIf mkOption types;
  cfg = config.stackgen;
  # A secret is named by its path as a string; a Nix path would copy it into the store.
  secretFile = types.nullOr (types.strMatching "/.+");
in
{
  options.stackgen = {
    openWebui.environmentFile = mkOption {
      type = secretFile;
      default = "/run/secrets/open-webui.env";
      description = "Environment file with `WEBUI_SECRET_KEY=...` (session signing key).";
    };
  };

  config = {
    home.packages = [
      pkgs.python312
      pkgs.uv
    ];

    services.ollama = {
      enable = true;
      acceleration = false;
      host = "0.0.0.0";
      port = 11434;
    };

    # Containers need Linux (home-manager asserts it).
    services.podman = mkIf pkgs.stdenv.hostPlatform.isLinux {
      enable = true;
      networks.edge.description = "Network of the edge services";
      volumes = {
        edge-open-webui = { };
      };
      containers = {
        edge-llama-cpp = {
          image = "ghcr.io/ggml-org/llama.cpp:server-cuda-b7018";
          network = [ "edge.network" ];
          ports = [ "127.0.0.1:8080:8080" ];
          volumes = [ "/srv/models:/models:ro" ];
          exec = "--host 0.0.0.0 --port 8080 --model /models/model.gguf --ctx-size 8192 --n-gpu-layers 40";
          devices = [ "nvidia.com/gpu=all" ];
        };
        edge-open-webui = {
          image = "ghcr.io/open-webui/open-webui:0.6.26";
          network = [ "host" ];
          volumes = [ "edge-open-webui.volume:/app/backend/data" ];
          environment = {
            SCARF_NO_ANALYTICS = "True";
            DO_NOT_TRACK = "True";
            ANONYMIZED_TELEMETRY = "False";
            HOST = "0.0.0.0";
            PORT = "8088";
            OLLAMA_BASE_URL = "http://127.0.0.1:11434";
          };
          environmentFile = lib.optional (cfg.openWebui.environmentFile != null) cfg.openWebui.environmentFile;
        };
      };
    };
  };
}
