# NixOS module for the stack "tutor" (nixos-26.11 option names).
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
  options.stackgen = {
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
  };

  config = {
    nix.settings = {
      experimental-features = [
        "nix-command"
        "flakes"
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
      # nixpkgs writes OLLAMA_HOST=<host>:<port> into an Environment= line: an IPv6 address
      # goes in brackets (Go's SplitHostPort), and `%` is doubled for systemd.
      host = mkDefault "127.0.0.1";
      port = mkDefault 11434;
      modelsDir = mkDefault "/var/lib/ollama/models";
      # Pulled when the service starts (ollama-model-loader.service).
      loadModels = mkDefault [ "qwen2.5:7b" ];
    };

    services.postgresql = {
      enable = mkDefault true;
      package = mkDefault pkgs.postgresql_17;
      settings = {
        port = mkDefault 5432;
      };
      ensureDatabases = [ "tutor" ];
      # Each database is owned by a role of the same name.
      ensureUsers = [
        {
          name = "tutor";
          ensureDBOwnership = true;
        }
      ];
      extensions = ps: [
        ps.pgvector
      ];
    };
    # What ensure* cannot do: create the extensions and set the owners' passwords.
    systemd.services.stackgen-postgres-setup = {
      description = "Extensions and passwords for the tutor databases";
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
        psql -v ON_ERROR_STOP=1 -d tutor -c 'CREATE EXTENSION IF NOT EXISTS vector'
      ''
      + lib.optionalString (cfg.postgres.passwordFile != null) ''
        # psql reads the file itself, so the password never appears in a command line.
        psql -v ON_ERROR_STOP=1 -d postgres <<'SQL'
        \set password `cat "$CREDENTIALS_DIRECTORY/password"`
        ALTER ROLE "tutor" WITH LOGIN PASSWORD :'password';
        SQL
      '';
    };

    services.redis.servers.tutor = {
      enable = mkDefault true;
      # A named server listens on no TCP port unless one is set.
      port = mkDefault 6379;
      bind = mkDefault "127.0.0.1";
      requirePassFile = cfg.redis.passwordFile;
      # On by default on every target (stackgen.services.redis.APPENDONLY_DEFAULT says why).
      appendOnly = mkDefault true;
    };

    # The app's `command:` as a hardened service; the words escaped for ExecStart=.
    systemd.services.tutor-tutor-api = lib.mkMerge [
      {
        description = "tutor-api of tutor";
        after = [
          "network.target"
          "postgresql.service"
          "stackgen-postgres-setup.service"
          "redis-tutor.service"
          "ollama.service"
        ];
        requires = [
          "postgresql.service"
          "stackgen-postgres-setup.service"
          "redis-tutor.service"
          "ollama.service"
        ];
        wantedBy = [ "multi-user.target" ];
        environment = {
          HOME = "/var/lib/tutor-tutor-api";
          LOG_LEVEL = "info";
          TUTOR_LANGUAGE = "es";
          POSTGRES_URL = "postgresql://tutor@127.0.0.1:5432/tutor";
          DATABASE_URL = "postgresql://tutor@127.0.0.1:5432/tutor";
          REDIS_URL = "redis://127.0.0.1:6379";
          OLLAMA_URL = "http://127.0.0.1:11434";
          OLLAMA_BASE_URL = "http://127.0.0.1:11434";
          OLLAMA_HOST = "127.0.0.1:11434";
        };
        path = [ "/run/current-system/sw" ];
        serviceConfig = {
          Restart = "on-failure";
          RestartSec = 5;
          StateDirectory = "tutor-tutor-api";
          WorkingDirectory = "/var/lib/tutor-tutor-api";
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
          TimeoutStartSec = 390;
        };
      }
      {
        serviceConfig.ExecStart = "/opt/tutor-api/bin/tutor-api --port 8000";
        # Starts once the services it uses answer (their units count as started before that).
        serviceConfig.ExecStartPre = "${pkgs.writeShellScript "tutor-tutor-api-wait" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:11434/api/version ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'ollama did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
        # Counts as started once its health check passes: the units after it wait for that.
        serviceConfig.ExecStartPost = "${pkgs.writeShellScript "tutor-tutor-api-healthy" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:8000/healthz ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'tutor-api did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
      }
    ];
  };
}
