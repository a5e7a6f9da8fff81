# NixOS module for the stack "cpu-box" (nixos-26.05 option names).
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
    ./modules/nixos/model-fetch.nix
  ];

  options.stackgen = {
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
      models = mkDefault "/var/lib/ollama/models";
      # Pulled when the service starts (ollama-model-loader.service).
      loadModels = mkDefault [ "qwen2.5:0.5b" ];
      # Environment= lines: nixpkgs JSON-quotes them but leaves `%` to systemd.
      environmentVariables.HF_ENDPOINT = mkDefault "https://hf-mirror.com";
    };

    services.llama-cpp = {
      enable = mkDefault true;
      host = mkDefault "127.0.0.1";
      port = mkDefault 8081;
      model = mkDefault "/var/lib/llama-cpp/models/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf";
      extraFlags = mkDefault [ "--ctx-size" "2048" ];
    };

    services.postgresql = {
      enable = mkDefault true;
      package = mkDefault pkgs.postgresql_16;
      settings = {
        port = mkDefault 5432;
        # Only the spec's address (enableTCPIP alone would listen on every interface).
        listen_addresses = mkDefault "0.0.0.0";
        shared_preload_libraries = mkDefault "pg_cron";
        # pg_cron runs in the first database, as in the containers.
        "cron.database_name" = mkDefault "app";
      };
      ensureDatabases = [ "app" "analytics" ];
      # Each database is owned by a role of the same name.
      ensureUsers = [
        {
          name = "app";
          ensureDBOwnership = true;
        }
        {
          name = "analytics";
          ensureDBOwnership = true;
        }
      ];
      extensions = ps: [
        ps.pgvector
        ps.pg_cron
      ];
      # Exposed by the spec (host 0.0.0.0): password logins from the network.
      enableTCPIP = mkDefault true;
      authentication = ''
        host all all 0.0.0.0/0 scram-sha-256
        host all all ::/0 scram-sha-256
      '';
    };
    # What ensure* cannot do: create the extensions and set the owners' passwords.
    systemd.services.stackgen-postgres-setup = {
      description = "Extensions and passwords for the cpu-box databases";
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
        psql -v ON_ERROR_STOP=1 -d app -c 'CREATE EXTENSION IF NOT EXISTS vector'
        psql -v ON_ERROR_STOP=1 -d analytics -c 'CREATE EXTENSION IF NOT EXISTS vector'
        psql -v ON_ERROR_STOP=1 -d app -c 'CREATE EXTENSION IF NOT EXISTS pg_cron'
      ''
      + lib.optionalString (cfg.postgres.passwordFile != null) ''
        # psql reads the file itself, so the password never appears in a command line.
        psql -v ON_ERROR_STOP=1 -d postgres <<'SQL'
        \set password `cat "$CREDENTIALS_DIRECTORY/password"`
        ALTER ROLE "app" WITH LOGIN PASSWORD :'password';
        ALTER ROLE "analytics" WITH LOGIN PASSWORD :'password';
        SQL
      '';
    };

    services.redis.servers.cpu-box = {
      enable = mkDefault true;
      # A named server listens on no TCP port unless one is set.
      port = mkDefault 6379;
      bind = mkDefault "0.0.0.0";
      requirePassFile = cfg.redis.passwordFile;
      # On by default on every target (stackgen.services.redis.APPENDONLY_DEFAULT says why).
      appendOnly = mkDefault true;
      openFirewall = mkDefault true;
    };

    services.qdrant = {
      enable = mkDefault true;
      # Merged over the module's defaults (storage paths, web UI). nixpkgs sets these leaves
      # itself with mkDefault (priority 1000): ours sit above it and below a plain definition
      # of yours (100), so both merge without a conflict.
      settings = {
        service.host = mkOverride 900 "0.0.0.0";
        service.http_port = mkOverride 900 6333;
        service.grpc_port = mkOverride 900 6334;
        telemetry_disabled = mkOverride 900 true;
      };
    };
    systemd.services.qdrant.serviceConfig.EnvironmentFile = mkIf (cfg.qdrant.environmentFile != null) (unitText cfg.qdrant.environmentFile);

    # Download each GGUF file before its llama.cpp unit starts (./modules/nixos/model-fetch.nix).
    stackgen.modelFetch = {
      huggingfaceEndpoint = "https://hf-mirror.com";
      files.llama-cpp = {
        url = "https://huggingface.co/stackgen-example/tiny-gguf/resolve/main/tiny.gguf";
        sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        path = "/var/lib/llama-cpp/models/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf";
        requiredBy = [ "llama-cpp.service" ];
      };
    };

    # Exposed by the spec; these modules have no openFirewall option.
    networking.firewall.allowedTCPPorts = [ 5432 6333 6334 ];
  };
}
