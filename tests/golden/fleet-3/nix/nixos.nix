# NixOS module for the stack "ai-fleet" (nixos-26.11 option names).
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
  # What the apps' health waits run: bash (writeShellScript), curl, coreutils, then the unit's PATH.
  waitPath = "export PATH=${pkgs.curl}/bin:${pkgs.coreutils}/bin:$PATH\n";
in
{
  imports = [
    ./modules/nixos/nvidia.nix
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
    postgres.passwordFile = mkOption {
      type = secretFile;
      default = "/run/secrets/postgres-password";
      description = ''
        File holding the password given to each database's owner role (named like the
        database) for TCP logins. null: local peer authentication only.
      '';
    };
    redis.passwordFile = mkOption {
      type = secretFile;
      default = "/run/secrets/redis-password";
      description = "File holding the Redis password (requirepass). null: no password.";
    };
    qdrant.environmentFile = mkOption {
      type = secretFile;
      default = "/run/secrets/qdrant.env";
      description = "Environment file with `QDRANT__SERVICE__API_KEY=...`. null: no API key.";
    };
    openWebui.environmentFile = mkOption {
      type = secretFile;
      default = null;
      description = "Environment file with `WEBUI_SECRET_KEY=...` (session signing key).";
    };
  };

  config = {
    # GPU: driver, /run/opengl-driver/lib (./modules/nixos/nvidia.nix).
    # Defaults from the spec: override any of them from your own configuration.
    stackgen.nvidia = {
      enable = mkDefault true;
      open = mkDefault true;
    };
    nixpkgs.config = mkIf cfg.nixpkgsConfig (import ./nixpkgs-config.nix { inherit lib; });

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
      host = mkDefault "127.0.0.1";
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
        host = mkDefault "127.0.0.1";
        port = mkDefault 8080;
        model = mkDefault "/var/lib/llama-cpp/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf";
        ctx-size = mkDefault 4096;
        n-gpu-layers = mkDefault 999;
      };
    };

    services.postgresql = {
      enable = mkDefault true;
      package = mkDefault pkgs.postgresql_17;
      settings = {
        port = mkDefault 5432;
      };
      ensureDatabases = [ "aidb" ];
      # Each database is owned by a role of the same name.
      ensureUsers = [
        {
          name = "aidb";
          ensureDBOwnership = true;
        }
      ];
      extensions = ps: [
        ps.pgvector
      ];
    };
    # What ensure* cannot do: create the extensions and set the owners' passwords.
    systemd.services.stackgen-postgres-setup = {
      description = "Extensions and passwords for the ai-fleet databases";
      after = [
        "postgresql.service"
        "postgresql-setup.service"
      ];
      requires = [ "postgresql.service" ];
      wantedBy = [ "multi-user.target" ];
      path = [ config.services.postgresql.package ];
      environment.PGPORT = toString config.services.postgresql.settings.port;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        User = "postgres";
        LoadCredential = mkIf (cfg.postgres.passwordFile != null) [ "password:${unitText cfg.postgres.passwordFile}" ];
      };
      script = ''
        set -euo pipefail
        psql -v ON_ERROR_STOP=1 -d aidb -c 'CREATE EXTENSION IF NOT EXISTS vector'
      ''
      + lib.optionalString (cfg.postgres.passwordFile != null) ''
        # psql reads the file itself, so the password never appears in a command line.
        psql -v ON_ERROR_STOP=1 -d postgres <<'SQL'
        \set password `cat "$CREDENTIALS_DIRECTORY/password"`
        ALTER ROLE "aidb" WITH LOGIN PASSWORD :'password';
        SQL
      '';
    };

    services.redis.servers.ai-fleet = {
      enable = mkDefault true;
      # A named server listens on no TCP port unless one is set.
      port = mkDefault 6379;
      bind = mkDefault "127.0.0.1";
      requirePassFile = cfg.redis.passwordFile;
      # On by default on every target (stackgen.services.redis.APPENDONLY_DEFAULT says why).
      appendOnly = mkDefault true;
      settings.maxmemory = mkDefault "512mb";
    };

    services.qdrant = {
      enable = mkDefault true;
      # Merged over the module's defaults (storage paths, web UI). nixpkgs sets these leaves
      # itself with mkDefault (priority 1000): ours sit above it and below a plain definition
      # of yours (100), so both merge without a conflict.
      settings = {
        service.host = mkOverride 900 "127.0.0.1";
        service.http_port = mkOverride 900 6333;
        service.grpc_port = mkOverride 900 6334;
        telemetry_disabled = mkOverride 900 true;
      };
    };
    systemd.services.qdrant.serviceConfig.EnvironmentFile = mkIf (cfg.qdrant.environmentFile != null) (unitText cfg.qdrant.environmentFile);

    services.open-webui = {
      enable = mkDefault true;
      # nixpkgs splices host into ExecStart= and `environment` into Environment= lines,
      # escaping neither's `%`.
      host = mkDefault "127.0.0.1";
      port = mkDefault 3000;
      # Setting `environment` replaces the module's defaults: keep its telemetry opt-outs.
      environment = {
        SCARF_NO_ANALYTICS = mkDefault "True";
        DO_NOT_TRACK = mkDefault "True";
        ANONYMIZED_TELEMETRY = mkDefault "False";
        OLLAMA_BASE_URL = mkDefault "http://127.0.0.1:11434";
        HF_ENDPOINT = mkDefault "https://hf-mirror.com";
      };
    };
    systemd.services.open-webui.serviceConfig.EnvironmentFile = mkIf (cfg.openWebui.environmentFile != null) (unitText cfg.openWebui.environmentFile);

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
        serviceConfig.ExecStart = "${pkgs.llama-cpp.override { cudaSupport = true; }}/bin/llama-server " + "--host 127.0.0.1 --port 8081 --model /var/lib/llama-cpp/models/qwen2.5-coder-7b-q4_k_m.gguf --ctx-size 16384 --n-gpu-layers 999";
      }
    ];

    # The app's `command:` as a hardened service; the words escaped for ExecStart=.
    systemd.services.ai-fleet-aidb = lib.mkMerge [
      {
        description = "aidb of ai-fleet";
        after = [
          "network.target"
          "postgresql.service"
          "stackgen-postgres-setup.service"
          "redis-ai-fleet.service"
          "qdrant.service"
          "ollama.service"
          "llama-cpp-coder.service"
        ];
        requires = [
          "postgresql.service"
          "stackgen-postgres-setup.service"
          "redis-ai-fleet.service"
          "qdrant.service"
          "ollama.service"
          "llama-cpp-coder.service"
        ];
        wantedBy = [ "multi-user.target" ];
        environment = {
          HOME = "/var/lib/ai-fleet-aidb";
          LOG_LEVEL = "info";
          POSTGRES_URL = "postgresql://aidb@127.0.0.1:5432/aidb";
          POSTGRES_PASSWORD_FILE = "%d/postgres-password";
          DATABASE_URL = "postgresql://aidb@127.0.0.1:5432/aidb";
          REDIS_URL = "redis://127.0.0.1:6379";
          REDIS_PASSWORD_FILE = "%d/redis-password";
          QDRANT_URL = "http://127.0.0.1:6333";
          QDRANT_API_KEY_FILE = "%d/qdrant-api-key";
          OLLAMA_URL = "http://127.0.0.1:11434";
          OLLAMA_BASE_URL = "http://127.0.0.1:11434";
          OLLAMA_HOST = "127.0.0.1:11434";
          CODER_URL = "http://127.0.0.1:8081";
          OPENAI_BASE_URL = "http://127.0.0.1:8081/v1";
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
          TimeoutStartSec = 1290;
        };
      }
      {
        # Not an absolute path: env(1) finds the program in the system profile (PATH from `path`).
        serviceConfig.ExecStart = "${pkgs.coreutils}/bin/env " + "uv run uvicorn aidb.main:app --host 10.0.0.13 --port 8091";
        # Starts once the services it uses answer (their units count as started before that).
        serviceConfig.ExecStartPre = "${pkgs.writeShellScript "ai-fleet-aidb-wait" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:6333/readyz ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'qdrant did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:11434/api/version ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'ollama did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\ndeadline=\$((SECONDS + 600))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:8081/health ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'coder did not become healthy within 600 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
        # Counts as started once its health check passes: the units after it wait for that.
        serviceConfig.ExecStartPost = "${pkgs.writeShellScript "ai-fleet-aidb-healthy" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:8091/health ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'aidb did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
      }
    ];
  };
}
