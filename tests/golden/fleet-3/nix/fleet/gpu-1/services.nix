# NixOS module for the services of the host "gpu-1" of the fleet "ai-fleet"
# (nixos-26.11 option names), imported by ./default.nix (nixosConfigurations.gpu-1).
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
# Adjust the `stackgen.*` options below from hosts/gpu-1/hardware.nix if you need to.
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
in
{
  imports = [
    ../modules/nixos/nvidia.nix
  ];

  options.stackgen = {
    nixpkgsConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Set `nixpkgs.config` from ../../nixpkgs-config.nix (CUDA builds, unfree allowed only for
        NVIDIA's licenses). Turn off when pkgs is given from outside (`nixpkgs.pkgs`,
        read-only pkgs) and carry those settings there instead.
      '';
    };
    binaryCaches = mkOption {
      type = types.bool;
      default = true;
      description = "Add the stack's binary caches (mirrors first, the CUDA cache) to nix.settings.";
    };
  };

  config = {
    # GPU: driver, /run/opengl-driver/lib (./modules/nixos/nvidia.nix).
    # Defaults from the spec: override any of them from your own configuration.
    stackgen.nvidia = {
      enable = mkDefault true;
      open = mkDefault true;
    };
    nixpkgs.config = mkIf cfg.nixpkgsConfig (import ../../nixpkgs-config.nix { inherit lib; });

    nix.settings = {
      experimental-features = [
        "nix-command"
        "flakes"
      ];
      # Tried in this order; NixOS adds cache.nixos.org after them.
      substituters = mkIf cfg.binaryCaches [
        "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store"
        "https://mirrors.ustc.edu.cn/nix-channels/store"
        "https://mirror.sjtu.edu.cn/nix-channels/store"
        "https://mirror.nju.edu.cn/nix-channels/store"
        "https://mirrors.bfsu.edu.cn/nix-channels/store"
        "https://cache.nixos-cuda.org"
      ];
      trusted-public-keys = mkIf cfg.binaryCaches [
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
      package = mkDefault pkgs.ollama-cuda;
      # nixpkgs writes OLLAMA_HOST=<host>:<port> into an Environment= line: an IPv6 address
      # goes in brackets (Go's SplitHostPort), and `%` is doubled for systemd.
      host = mkDefault "10.0.0.11";
      port = mkDefault 11434;
      modelsDir = mkDefault "/var/lib/ollama/models";
      # Pulled when the service starts (ollama-model-loader.service).
      loadModels = mkDefault [ "llama3.2:3b" "qwen2.5:7b" ];
      # Environment= lines: nixpkgs JSON-quotes them but leaves `%` to systemd.
      environmentVariables.HF_ENDPOINT = mkDefault "https://hf-mirror.com";
    };

    services.llama-cpp = {
      enable = mkDefault true;
      package = mkDefault (pkgs.llama-cpp.override { cudaSupport = true; });
      # Each key becomes a llama-server flag (--key value).
      settings = {
        host = mkDefault "10.0.0.11";
        port = mkDefault 8080;
        model = mkDefault "/var/lib/llama-cpp/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf";
        ctx-size = mkDefault 4096;
        n-gpu-layers = mkDefault 999;
      };
    };

    # nixpkgs' services.llama-cpp runs one server: this one gets a unit of its own, with the
    # module's hardening. The arguments are escaped for ExecStart= (quoted, `%` and `$` doubled).
    systemd.services.llama-cpp-coder = lib.mkMerge [
      {
        description = "llama.cpp server coder of ai-fleet";
        after = [ "network.target" ];
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          Type = "idle";
          KillSignal = "SIGINT";
          Restart = "on-failure";
          RestartSec = 300;
          PrivateDevices = false;
          DynamicUser = true;
          CapabilityBoundingSet = "";
          RestrictAddressFamilies = [
            "AF_INET"
            "AF_INET6"
            "AF_UNIX"
          ];
          NoNewPrivileges = true;
          PrivateMounts = true;
          PrivateTmp = true;
          PrivateUsers = true;
          ProtectClock = true;
          ProtectControlGroups = true;
          ProtectHome = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectSystem = "strict";
          LockPersonality = true;
          RemoveIPC = true;
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [
            "@system-service"
            "~@privileged"
          ];
          SystemCallErrorNumber = "EPERM";
          ProtectProc = "invisible";
          ProtectHostname = true;
          MemoryDenyWriteExecute = true;
          ProcSubset = "pid";
        };
      }
      {
        serviceConfig.ExecStart = "${pkgs.llama-cpp.override { cudaSupport = true; }}/bin/llama-server " + "--host 10.0.0.11 --port 8081 --model /var/lib/llama-cpp/models/qwen2.5-coder-7b-q4_k_m.gguf --ctx-size 16384 --n-gpu-layers 999";
      }
    ];
  };
}
