# NixOS module for the services of the host "db-1" of the fleet "ai-fleet"
# (nixos-26.11 option names), imported by ./default.nix (nixosConfigurations.db-1).
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
# Adjust the `stackgen.*` options below from hosts/db-1/hardware.nix if you need to.
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
  options.stackgen = {
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

    services.postgresql = {
      enable = mkDefault true;
      package = mkDefault pkgs.postgresql_17;
      settings = {
        port = mkDefault 5432;
        # Only the spec's address (enableTCPIP alone would listen on every interface).
        listen_addresses = mkDefault "10.0.0.12";
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
      # Exposed by the spec (host 10.0.0.12): password logins from the network.
      enableTCPIP = mkDefault true;
      authentication = ''
        host all all 10.0.0.11/32 scram-sha-256
        host all all 10.0.0.13/32 scram-sha-256
      '';
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
      bind = mkDefault "10.0.0.12";
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
        service.host = mkOverride 900 "10.0.0.12";
        service.http_port = mkOverride 900 6333;
        service.grpc_port = mkOverride 900 6334;
        telemetry_disabled = mkOverride 900 true;
      };
    };
    systemd.services.qdrant.serviceConfig.EnvironmentFile = mkIf (cfg.qdrant.environmentFile != null) (unitText cfg.qdrant.environmentFile);
  };
}
