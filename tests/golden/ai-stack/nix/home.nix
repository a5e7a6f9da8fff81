# home-manager module for the stack "ai-stack": packages, mirror variables, a user
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
  postgresInit = pkgs.writeText "ai-stack-postgres-init.sql" (
    ''
      CREATE ROLE "aidb" LOGIN;
      CREATE DATABASE "aidb" OWNER "aidb";
      \connect "aidb"
      CREATE EXTENSION IF NOT EXISTS vector;
    ''
    + lib.optionalString (cfg.postgres.passwordFile != null) ''
      \set password `cat /run/secrets/postgres-password`
      ALTER ROLE "aidb" WITH PASSWORD :'password';
    ''
  );
  # Redis reads no password file: this wrapper hands the file's content to redis-server.
  redisStart = pkgs.writeText "ai-stack-redis-start.sh" ''
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
      default = null;
      description = ''
        File holding the password of the postgres superuser and of each database's owner
        role. null: passwordless ("trust") logins on the published port.
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
    openWebui.environmentFile = mkOption {
      type = secretFile;
      default = null;
      description = "Environment file with `WEBUI_SECRET_KEY=...` (session signing key).";
    };
  };

  config = {
    home.packages = [
      pkgs.python312
      pkgs.uv
      pkgs.git
      pkgs.curl
      pkgs.jq
      pkgs.ripgrep
    ];

    # Seen by login shells, not by systemd user services.
    home.sessionVariables = {
      UV_DEFAULT_INDEX = "https://pypi.tuna.tsinghua.edu.cn/simple";
      PIP_INDEX_URL = "https://pypi.tuna.tsinghua.edu.cn/simple";
      HF_ENDPOINT = "https://hf-mirror.com";
    };

    services.ollama = {
      enable = true;
      acceleration = "cuda";
      host = "127.0.0.1";
      port = 11434;
      environmentVariables.HF_ENDPOINT = "https://hf-mirror.com";
    };
    # Pulled by ollama-models.service once Ollama answers (./modules/home/ollama-models.nix).
    stackgen.ollamaModels = [ "llama3.2:3b" "qwen2.5:7b" ];

    # Containers need Linux (home-manager asserts it).
    services.podman = mkIf pkgs.stdenv.hostPlatform.isLinux {
      enable = true;
      networks.ai-stack.description = "Network of the ai-stack services";
      volumes = {
        ai-stack-postgres = { };
        ai-stack-redis = { };
        ai-stack-qdrant = { };
        ai-stack-open-webui = { };
      };
      containers = {
        ai-stack-llama-cpp = {
          image = "ghcr.io/ggml-org/llama.cpp:server-cuda-b7018";
          network = [ "ai-stack.network" ];
          ports = [ "127.0.0.1:8080:8080" ];
          volumes = [ "/var/lib/llama-cpp/models:/models:ro" ];
          exec = "--host 0.0.0.0 --port 8080 --model /models/qwen2.5-coder-7b-instruct-q4_k_m.gguf --ctx-size 4096 --n-gpu-layers 999";
          devices = [ "nvidia.com/gpu=all" ];
        };
        ai-stack-postgres = {
          image = "docker.io/pgvector/pgvector:0.8.1-pg17";
          network = [ "ai-stack.network" ];
          ports = [ "127.0.0.1:5432:5432" ];
          volumes = [
            "ai-stack-postgres.volume:/var/lib/postgresql/data"
            "${postgresInit}:/docker-entrypoint-initdb.d/stackgen.sql:ro"
          ]
          ++ lib.optional (cfg.postgres.passwordFile != null) "${cfg.postgres.passwordFile}:/run/secrets/postgres-password:ro";
          environment =
            if cfg.postgres.passwordFile != null then
              { POSTGRES_PASSWORD_FILE = "/run/secrets/postgres-password"; }
            else
              { POSTGRES_HOST_AUTH_METHOD = "trust"; };
        };
        ai-stack-redis = {
          image = "docker.io/library/redis:7.4.6";
          network = [ "ai-stack.network" ];
          ports = [ "127.0.0.1:6379:6379" ];
          volumes = [
            "ai-stack-redis.volume:/data"
            "${redisStart}:/stackgen-redis-start.sh:ro"
          ]
          ++ lib.optional (cfg.redis.passwordFile != null) "${cfg.redis.passwordFile}:/run/secrets/redis-password:ro";
          entrypoint = "/bin/sh";
          exec = "/stackgen-redis-start.sh --appendonly yes --maxmemory 512mb";
        };
        ai-stack-qdrant = {
          image = "docker.io/qdrant/qdrant:v1.15.3";
          network = [ "ai-stack.network" ];
          ports = [ "127.0.0.1:6333:6333" "127.0.0.1:6334:6334" ];
          volumes = [ "ai-stack-qdrant.volume:/qdrant/storage" ];
          environment = {
            QDRANT__TELEMETRY_DISABLED = "true";
          };
          environmentFile = lib.optional (cfg.qdrant.environmentFile != null) cfg.qdrant.environmentFile;
        };
        ai-stack-open-webui = {
          image = "ghcr.io/open-webui/open-webui:0.6.26";
          network = [ "host" ];
          volumes = [ "ai-stack-open-webui.volume:/app/backend/data" ];
          environment = {
            SCARF_NO_ANALYTICS = "True";
            DO_NOT_TRACK = "True";
            ANONYMIZED_TELEMETRY = "False";
            HOST = "127.0.0.1";
            PORT = "3000";
            OLLAMA_BASE_URL = "http://127.0.0.1:11434";
            HF_ENDPOINT = "https://hf-mirror.com";
          };
          environmentFile = lib.optional (cfg.openWebui.environmentFile != null) cfg.openWebui.environmentFile;
        };
      };
    };
  };
}
