# NixOS module for the services of the host "app-1" of the fleet "ai-fleet"
# (nixos-26.11 option names), imported by ./default.nix (nixosConfigurations.app-1).
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
# Adjust the `stackgen.*` options below from hosts/app-1/hardware.nix if you need to.
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
  # What the apps' health waits run: bash (writeShellScript), curl, coreutils, then the unit's PATH.
  waitPath = "export PATH=${pkgs.curl}/bin:${pkgs.coreutils}/bin:$PATH\n";
in
{
  options.stackgen = {
    binaryCaches = mkOption {
      type = types.bool;
      default = true;
      description = "Add the stack's binary caches (mirrors first, the CUDA cache) to nix.settings.";
    };
    openWebui.environmentFile = mkOption {
      type = secretFile;
      default = null;
      description = "Environment file with `WEBUI_SECRET_KEY=...` (session signing key).";
    };
  };

  config = {
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

    services.open-webui = {
      enable = mkDefault true;
      # nixpkgs splices host into ExecStart= and `environment` into Environment= lines,
      # escaping neither's `%`.
      host = mkDefault "10.0.0.13";
      port = mkDefault 3000;
      # Setting `environment` replaces the module's defaults: keep its telemetry opt-outs.
      environment = {
        SCARF_NO_ANALYTICS = mkDefault "True";
        DO_NOT_TRACK = mkDefault "True";
        ANONYMIZED_TELEMETRY = mkDefault "False";
        OLLAMA_BASE_URL = mkDefault "http://10.0.0.11:11434";
        HF_ENDPOINT = mkDefault "https://hf-mirror.com";
      };
    };
    systemd.services.open-webui.serviceConfig.EnvironmentFile = mkIf (cfg.openWebui.environmentFile != null) (unitText cfg.openWebui.environmentFile);

    # The app's `command:` as a hardened service; the words escaped for ExecStart=.
    systemd.services.ai-fleet-aidb = lib.mkMerge [
      {
        description = "aidb of ai-fleet";
        after = [ "network.target" ];
        requires = [ ];
        wantedBy = [ "multi-user.target" ];
        environment = {
          HOME = "/var/lib/ai-fleet-aidb";
          LOG_LEVEL = "info";
          POSTGRES_URL = "postgresql://aidb@10.0.0.12:5432/aidb";
          POSTGRES_PASSWORD_FILE = "%d/postgres-password";
          DATABASE_URL = "postgresql://aidb@10.0.0.12:5432/aidb";
          REDIS_URL = "redis://10.0.0.12:6379";
          REDIS_PASSWORD_FILE = "%d/redis-password";
          QDRANT_URL = "http://10.0.0.12:6333";
          QDRANT_API_KEY_FILE = "%d/qdrant-api-key";
          OLLAMA_URL = "http://10.0.0.11:11434";
          OLLAMA_BASE_URL = "http://10.0.0.11:11434";
          OLLAMA_HOST = "10.0.0.11:11434";
          CODER_URL = "http://10.0.0.11:8081";
          OPENAI_BASE_URL = "http://10.0.0.11:8081/v1";
        };
        path = [ "/run/current-system/sw" ];
        serviceConfig = {
          Restart = "on-failure";
          RestartSec = 5;
          StateDirectory = "ai-fleet-aidb";
          WorkingDirectory = "/var/lib/ai-fleet-aidb";
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
          LoadCredential = [
            "postgres-password:/run/secrets/postgres-password"
            "redis-password:/run/secrets/redis-password"
            "qdrant-api-key:/run/secrets/qdrant.env"
          ];
          TimeoutStartSec = 390;
        };
      }
      {
        # Not an absolute path: env(1) finds the program in the system profile (PATH from `path`).
        serviceConfig.ExecStart = "${pkgs.coreutils}/bin/env " + "uv run uvicorn aidb.main:app --host 10.0.0.13 --port 8091";
        # Counts as started once its health check passes: the units after it wait for that.
        serviceConfig.ExecStartPost = "${pkgs.writeShellScript "ai-fleet-aidb-healthy" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://10.0.0.13:8091/health ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'aidb did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
      }
    ];
  };
}
