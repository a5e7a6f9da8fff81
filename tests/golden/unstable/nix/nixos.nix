# NixOS module for the stack "edge" (nixos-unstable option names).
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
# Import it into your configuration (flake: inputs.<this flake>.nixosModules.default), then
# adjust the `stackgen.*` options below from there: secrets files, caches, nixpkgs config.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  inherit (lib) mkDefault mkIf mkOption mkOverride types;
  cfg = config.stackgen;
  # A secret is named by its path as a string; a Nix path would copy it into the store.
  secretFile = types.nullOr (types.strMatching "/.+");
  # NixOS writes serviceConfig values into the unit as they are, where systemd expands `%`
  # specifiers (LoadCredential=, EnvironmentFile=): doubled, they stay literal.
  unitText = lib.replaceStrings [ "%" ] [ "%%" ];
in
{
  imports = [
    ./modules/nixos/nvidia.nix
    ./modules/nixos/model-fetch.nix
  ];

  options.stackgen = {
    nixpkgsConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Set `nixpkgs.config` from ./nixpkgs-config.nix (CUDA builds, unfree allowed only for
        NVIDIA's licenses). Turn off when pkgs is given from outside (`nixpkgs.pkgs`,
        read-only pkgs) and carry those settings there instead.
      '';
    };
    binaryCaches = mkOption {
      type = types.bool;
      default = true;
      description = "Add the stack's binary caches (mirrors first, the CUDA cache) to nix.settings.";
    };
    openWebui.environmentFile = mkOption {
      type = secretFile;
      default = "/run/secrets/open-webui.env";
      description = "Environment file with `WEBUI_SECRET_KEY=...` (session signing key).";
    };
  };

  config = {
    # GPU: driver, /run/opengl-driver/lib, CDI specs for the containers (./modules/nixos/nvidia.nix).
    # Defaults from the spec: override any of them from your own configuration.
    stackgen.nvidia = {
      enable = mkDefault true;
      open = mkDefault false;
      containerToolkit = mkDefault true;
    };
    nixpkgs.config = mkIf cfg.nixpkgsConfig (import ./nixpkgs-config.nix { inherit lib; });

    nix.settings = {
      experimental-features = [
        "nix-command"
        "flakes"
      ];
      # Tried in this order; NixOS adds cache.nixos.org after them.
      substituters = mkIf cfg.binaryCaches [
        "https://cache.example.org"
        "https://cache.nixos-cuda.org"
      ];
      trusted-public-keys = mkIf cfg.binaryCaches [
        "cache.example.org-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        "cache.nixos-cuda.org:74DUi4Ye579gUqzH4ziL9IyiJBlDpMRn9MBN8oNan9M="
      ];
    };

    # Unpatched binaries (uv's manylinux wheels) find these libraries through nix-ld.
    programs.nix-ld = {
      enable = mkDefault true;
      libraries = options.programs.nix-ld.libraries.default ++ [
        pkgs.stdenv.cc.cc.lib
        pkgs.zlib
        pkgs.libGL
        pkgs.glib
      ];
    };

    # mkDefault: your own configuration's values win (services.ollama.port = ...; needs no mkForce).
    services.ollama = {
      enable = mkDefault true;
      package = mkDefault pkgs.ollama-cpu;
      # nixpkgs writes OLLAMA_HOST=<host>:<port> into an Environment= line: an IPv6 address
      # goes in brackets (Go's SplitHostPort), and `%` is doubled for systemd.
      host = mkDefault "0.0.0.0";
      port = mkDefault 11434;
      modelsDir = mkDefault "/var/lib/ollama/models";
      openFirewall = mkDefault true;
    };

    services.llama-cpp = {
      enable = mkDefault true;
      package = mkDefault (pkgs.llama-cpp.override { cudaSupport = true; });
      # Each key becomes a llama-server flag (--key value).
      settings = {
        host = mkDefault "127.0.0.1";
        port = mkDefault 8080;
        model = mkDefault "/srv/models/model.gguf";
        ctx-size = mkDefault 8192;
        n-gpu-layers = mkDefault 40;
      };
    };

    services.open-webui = {
      enable = mkDefault true;
      # nixpkgs splices host into ExecStart= and `environment` into Environment= lines,
      # escaping neither's `%`.
      host = mkDefault "0.0.0.0";
      port = mkDefault 8088;
      # Setting `environment` replaces the module's defaults: keep its telemetry opt-outs.
      environment = {
        SCARF_NO_ANALYTICS = mkDefault "True";
        DO_NOT_TRACK = mkDefault "True";
        ANONYMIZED_TELEMETRY = mkDefault "False";
        OLLAMA_BASE_URL = mkDefault "http://127.0.0.1:11434";
      };
      openFirewall = mkDefault true;
    };
    systemd.services.open-webui.serviceConfig.EnvironmentFile = mkIf (cfg.openWebui.environmentFile != null) (unitText cfg.openWebui.environmentFile);

    # Download each GGUF file before its llama.cpp unit starts (./modules/nixos/model-fetch.nix).
    stackgen.modelFetch = {
      files.llama-cpp = {
        url = "https://example.org/model.gguf";
        sha256 = null; # the spec gives no model_sha256: downloaded unverified
        path = "/srv/models/model.gguf";
        requiredBy = [ "llama-cpp.service" ];
      };
    };
  };
}
