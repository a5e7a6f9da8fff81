# home-manager module for the stack "cpu-box": packages, mirror variables, a user
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
  # Run once by the postgres image on an empty data volume.
  postgresInit = pkgs.writeText "cpu-box-postgres-init.sql" (
    ''
      CREATE ROLE "app" LOGIN;
      CREATE DATABASE "app" OWNER "app";
      CREATE ROLE "analytics" LOGIN;
      CREATE DATABASE "analytics" OWNER "analytics";
      \connect "app"
      CREATE EXTENSION IF NOT EXISTS vector;
      \connect "analytics"
      CREATE EXTENSION IF NOT EXISTS vector;
      \connect "app"
      CREATE EXTENSION IF NOT EXISTS pg_cron;
    ''
    + lib.optionalString (cfg.postgres.passwordFile != null) ''
      \set password `cat /run/secrets/postgres-password`
      ALTER ROLE "app" WITH PASSWORD :'password';
      ALTER ROLE "analytics" WITH PASSWORD :'password';
    ''
  );
  # Redis reads no password file: this wrapper hands the file's content to redis-server.
  redisStart = pkgs.writeText "cpu-box-redis-start.sh" ''
    if [ -r /run/secrets/redis-password ]; then
      set -- --requirepass "$(cat /run/secrets/redis-password)" "$@"
    fi
    exec redis-server "$@"
  '';
in
{
  imports = [
    ./modules/home/ollama-models.nix
  ];

  options.stackgen = {
    postgres.passwordFile = mkOption {
      type = secretFile;
      default = "/run/secrets/postgres-password";
      description = ''
        File holding the password of the postgres superuser and of each database's owner
        role. null: passwordless ("trust") logins on the published port.
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
    assertions = [
      {
        assertion = cfg.postgres.passwordFile != null;
        message = "services.postgres is exposed on 0.0.0.0: set stackgen.postgres.passwordFile (passwordless logins are only allowed on loopback).";
      }
    ];

    home.packages = [
      pkgs.python313
      pkgs.uv
      pkgs.git
    ];

    # Seen by login shells, not by systemd user services.
    home.sessionVariables = {
      HF_ENDPOINT = "https://hf-mirror.com";
    };

    services.ollama = {
      enable = true;
      host = "127.0.0.1";
      port = 11434;
      environmentVariables.HF_ENDPOINT = "https://hf-mirror.com";
    };
    # Pulled by ollama-models.service once Ollama answers (./modules/home/ollama-models.nix).
    stackgen.ollamaModels = [ "qwen2.5:0.5b" ];

    # Containers need Linux (home-manager asserts it).
    services.podman = mkIf pkgs.stdenv.hostPlatform.isLinux {
      enable = true;
      networks.cpu-box.description = "Network of the cpu-box services";
      volumes = {
        cpu-box-postgres = { };
        cpu-box-redis = { };
        cpu-box-qdrant = { };
      };
      containers = {
        cpu-box-llama-cpp = {
          image = "ghcr.io/ggml-org/llama.cpp:server-b7018";
          network = [ "cpu-box.network" ];
          ports = [ "127.0.0.1:8081:8081" ];
          volumes = [ "/var/lib/llama-cpp/models:/models:ro" ];
          exec = "--host 0.0.0.0 --port 8081 --model /models/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf --ctx-size 2048";
        };
        cpu-box-postgres = {
          image = "docker.io/timescale/timescaledb-ha:pg16";
          network = [ "cpu-box.network" ];
          ports = [ "0.0.0.0:5432:5432" ];
          volumes = [
            "cpu-box-postgres.volume:/home/postgres/pgdata"
            "${postgresInit}:/docker-entrypoint-initdb.d/stackgen.sql:ro"
          ]
          ++ lib.optional (cfg.postgres.passwordFile != null) "${cfg.postgres.passwordFile}:/run/secrets/postgres-password:ro";
          environment =
            if cfg.postgres.passwordFile != null then
              { POSTGRES_PASSWORD_FILE = "/run/secrets/postgres-password"; }
            else
              { POSTGRES_HOST_AUTH_METHOD = "trust"; };
        };
        cpu-box-redis = {
          image = "docker.io/library/redis:7.4.6";
          network = [ "cpu-box.network" ];
          ports = [ "0.0.0.0:6379:6379" ];
          volumes = [
            "cpu-box-redis.volume:/data"
            "${redisStart}:/stackgen-redis-start.sh:ro"
          ]
          ++ lib.optional (cfg.redis.passwordFile != null) "${cfg.redis.passwordFile}:/run/secrets/redis-password:ro";
          entrypoint = "/bin/sh";
          exec = "/stackgen-redis-start.sh --appendonly yes";
        };
        cpu-box-qdrant = {
          image = "docker.io/qdrant/qdrant:v1.15.3";
          network = [ "cpu-box.network" ];
          ports = [ "0.0.0.0:6333:6333" "0.0.0.0:6334:6334" ];
          volumes = [ "cpu-box-qdrant.volume:/qdrant/storage" ];
          environment = {
            QDRANT__TELEMETRY_DISABLED = "true";
          };
          environmentFile = lib.optional (cfg.qdrant.environmentFile != null) cfg.qdrant.environmentFile;
        };
      };
    };
  };
}
