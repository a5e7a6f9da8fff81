# NixOS module for the stack "mcp-gateway" (nixos-26.11 option names).
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
      default = null;
      description = ''
        File holding the password given to each database's owner role (named like the
        database) for TCP logins. null: local peer authentication only.
      '';
    };
    redis.passwordFile = mkOption {
      type = secretFile;
      default = null;
      description = "File holding the Redis password (requirepass). null: no password.";
    };
    qdrant.environmentFile = mkOption {
      type = secretFile;
      default = null;
      description = "Environment file with `QDRANT__SERVICE__API_KEY=...`. null: no API key.";
    };
  };

  config = {
    # GPU: driver, /run/opengl-driver/lib, CDI specs for the containers (./modules/nixos/nvidia.nix).
    # Defaults from the spec: override any of them from your own configuration.
    stackgen.nvidia = {
      enable = mkDefault true;
      open = mkDefault true;
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

    services.llama-cpp = {
      enable = mkDefault true;
      package = mkDefault (pkgs.llama-cpp.override { cudaSupport = true; });
      # Each key becomes a llama-server flag (--key value).
      settings = {
        host = mkDefault "127.0.0.1";
        port = mkDefault 8080;
        model = mkDefault "/var/lib/llama-cpp/models/qwen2.5-7b-instruct-q4_k_m.gguf";
        ctx-size = mkDefault 4096;
        n-gpu-layers = mkDefault 999;
      };
    };

    services.postgresql = {
      enable = mkDefault true;
      package = mkDefault pkgs.postgresql_17;
      settings = {
        port = mkDefault 5432;
        shared_preload_libraries = mkDefault "timescaledb";
      };
      ensureDatabases = [ "gateway" ];
      # Each database is owned by a role of the same name.
      ensureUsers = [
        {
          name = "gateway";
          ensureDBOwnership = true;
        }
      ];
      extensions = ps: [
        ps.timescaledb-apache
        ps.pgvector
      ];
    };
    # What ensure* cannot do: create the extensions and set the owners' passwords.
    systemd.services.stackgen-postgres-setup = {
      description = "Extensions and passwords for the mcp-gateway databases";
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
        psql -v ON_ERROR_STOP=1 -d gateway -c 'CREATE EXTENSION IF NOT EXISTS timescaledb'
        psql -v ON_ERROR_STOP=1 -d gateway -c 'CREATE EXTENSION IF NOT EXISTS vector'
      ''
      + lib.optionalString (cfg.postgres.passwordFile != null) ''
        # psql reads the file itself, so the password never appears in a command line.
        psql -v ON_ERROR_STOP=1 -d postgres <<'SQL'
        \set password `cat "$CREDENTIALS_DIRECTORY/password"`
        ALTER ROLE "gateway" WITH LOGIN PASSWORD :'password';
        SQL
      '';
    };

    services.redis.servers.mcp-gateway = {
      enable = mkDefault true;
      # A named server listens on no TCP port unless one is set.
      port = mkDefault 6379;
      bind = mkDefault "127.0.0.1";
      requirePassFile = cfg.redis.passwordFile;
      # On by default on every target (stackgen.services.redis.APPENDONLY_DEFAULT says why).
      appendOnly = mkDefault true;
      settings.maxmemory = mkDefault "256mb";
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

    # nixpkgs' services.llama-cpp runs one server: this one gets a unit of its own, with the
    # module's hardening. The arguments are escaped for ExecStart= (quoted, `%` and `$` doubled).
    systemd.services.llama-cpp-coder = lib.mkMerge [
      {
        description = "llama.cpp server coder of mcp-gateway";
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
    systemd.services.mcp-gateway-gateway = lib.mkMerge [
      {
        description = "gateway of mcp-gateway";
        after = [
          "network.target"
          "postgresql.service"
          "stackgen-postgres-setup.service"
          "redis-mcp-gateway.service"
          "qdrant.service"
          "llama-cpp.service"
          "llama-cpp-coder.service"
        ];
        requires = [
          "postgresql.service"
          "stackgen-postgres-setup.service"
          "redis-mcp-gateway.service"
          "qdrant.service"
          "llama-cpp.service"
          "llama-cpp-coder.service"
        ];
        wantedBy = [ "multi-user.target" ];
        environment = {
          HOME = "/var/lib/mcp-gateway-gateway";
          LOG_LEVEL = "info";
          POSTGRES_URL = "postgresql://gateway@127.0.0.1:5432/gateway";
          DATABASE_URL = "postgresql://gateway@127.0.0.1:5432/gateway";
          REDIS_URL = "redis://127.0.0.1:6379";
          QDRANT_URL = "http://127.0.0.1:6333";
          CHAT_URL = "http://127.0.0.1:8080";
          CODER_URL = "http://127.0.0.1:8081";
        };
        path = [ "/run/current-system/sw" ];
        serviceConfig = {
          Restart = "on-failure";
          RestartSec = 5;
          StateDirectory = "mcp-gateway-gateway";
          WorkingDirectory = "/var/lib/mcp-gateway-gateway";
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
          TimeoutStartSec = 1590;
        };
      }
      {
        # Not an absolute path: env(1) finds the program in the system profile (PATH from `path`).
        serviceConfig.ExecStart = "${pkgs.coreutils}/bin/env " + "uv run uvicorn gateway.main:app --host 127.0.0.1 --port 8091";
        # Starts once the services it uses answer (their units count as started before that).
        serviceConfig.ExecStartPre = "${pkgs.writeShellScript "mcp-gateway-gateway-wait" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:6333/readyz ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'qdrant did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\ndeadline=\$((SECONDS + 600))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:8080/health ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'chat did not become healthy within 600 s' >&2; exit 1; fi\n  sleep 2\ndone\ndeadline=\$((SECONDS + 600))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:8081/health ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'coder did not become healthy within 600 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
        # Counts as started once its health check passes: the units after it wait for that.
        serviceConfig.ExecStartPost = "${pkgs.writeShellScript "mcp-gateway-gateway-healthy" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:8091/health ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'gateway did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
      }
    ];

    # `container` services (podman). The module passes every value to podman as one escaped word.
    virtualisation.oci-containers.backend = mkDefault "podman";
    virtualisation.oci-containers.containers.mcp-gateway-redis-insight = {
      image = "docker.io/redis/redisinsight:2.58";
      environment = {
        REDIS_URL = "redis://127.0.0.1:6379";
      };
      volumes = [ "mcp-gateway-redis-insight-data:/data" ];
      extraOptions = [
        "--network=host"
        "--health-cmd=wget -q -O /dev/null http://127.0.0.1:5540/api/health || curl --globoff -fsS -o /dev/null http://127.0.0.1:5540/api/health"
        "--health-start-period=30s"
        "--health-interval=10s"
        "--health-timeout=5s"
        "--health-retries=5"
        "--health-on-failure=kill"
      ];
      # Its unit counts as started once the healthcheck passes (podman run --sdnotify=healthy),
      # so the units that require it start after that, as compose's service_healthy does.
      podman = mkIf (config.virtualisation.oci-containers.backend == "podman") { sdnotify = "healthy"; };
    };
    systemd.services.podman-mcp-gateway-redis-insight = {
      requires = [ "redis-mcp-gateway.service" ];
      after = [ "redis-mcp-gateway.service" ];
    };
  };
}
