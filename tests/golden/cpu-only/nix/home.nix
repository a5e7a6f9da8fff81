# home-manager module for the stack "cpu-box": packages, mirror variables, a user
# Ollama and the other services as rootless Quadlet containers.
# Rendered by stackgen 0.1.0; change stack.yaml and re-render instead of editing.
# Import it into your home configuration (flake: inputs.<this flake>.homeModules.default).
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
  unitValue = if pkgs.stdenv.hostPlatform.isLinux then lib.replaceStrings [ "%" ] [ "%%" ] else value: value;
  # Quadlet hands a volume source to ExecStart=, where systemd expands
  # `%` and `$`; doubled, they stay literal.
  unitRaw = lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ];
  # Run once by the postgres image on an empty data volume.
  postgresInit = pkgs.writeText "cpu-box-postgres-init.sql" (
    lib.concatMapStrings (line: line + "\n") (
      [
        "-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing."
        "-- The postgres image runs this once, when it initializes an empty data volume."
        "CREATE DATABASE \"analytics\";"
        "CREATE ROLE \"app\" LOGIN;"
        "ALTER DATABASE \"app\" OWNER TO \"app\";"
        "CREATE ROLE \"analytics\" LOGIN;"
        "ALTER DATABASE \"analytics\" OWNER TO \"analytics\";"
        "\\connect \"app\""
        "CREATE EXTENSION IF NOT EXISTS \"vector\";"
        "\\connect \"analytics\""
        "CREATE EXTENSION IF NOT EXISTS \"vector\";"
        "\\connect \"app\""
        "CREATE EXTENSION IF NOT EXISTS \"pg_cron\";"
      ]
      ++ lib.optionals (cfg.postgres.passwordFile != null) [
        "\\set password `cat /run/secrets/postgres-password`"
        "ALTER ROLE \"app\" WITH PASSWORD :'password';"
        "ALTER ROLE \"analytics\" WITH PASSWORD :'password';"
      ]
    )
  );
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
      description = ''
        Environment file with `QDRANT__SERVICE__API_KEY=...` (NAME=value lines), mounted into
        the container and read there, so the key is on no command line. null: no API key.
      '';
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

    # Seen by login shells, not by systemd user services. home-manager writes each value as
    # `export NAME="value"` into hm-session-vars.sh: escaped for those double quotes.
    home.sessionVariables = {
      HF_ENDPOINT = "https://hf-mirror.com";
    };

    services.ollama = {
      enable = true;
      host = "127.0.0.1";
      port = 11434;
      # home-manager writes it into the user unit's Environment= line as it is, where systemd
      # expands `%` specifiers; launchd (macOS) takes it literally.
      environmentVariables.HF_ENDPOINT = unitValue "https://hf-mirror.com";
    };
    # Pulled by ollama-models.service once Ollama answers (./modules/home/ollama-models.nix).
    stackgen.ollamaModels = [ "qwen2.5:0.5b" ];

    # Containers need Linux (home-manager asserts it).
    services.podman = mkIf pkgs.stdenv.hostPlatform.isLinux {
      enable = true;
      networks.cpu-box.description = "Network of the cpu-box services";
      volumes = {
        cpu-box-postgres-data = { };
        cpu-box-redis-data = { };
        cpu-box-qdrant-data = { };
      };
      containers = {
        cpu-box-llama-cpp = {
          image = "ghcr.io/ggml-org/llama.cpp:server-b7018";
          network = [ "cpu-box.network" ];
          ports = [ "127.0.0.1:8081:8080" ];
          volumes = [ "/var/lib/llama-cpp/models:/var/lib/llama-cpp/models:ro" ];
          environment = {
            HF_ENDPOINT = "https://hf-mirror.com";
          };
          exec = "--model /var/lib/llama-cpp/models/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf --host 0.0.0.0 --port 8080 --ctx-size 2048";
          extraConfig = {
            Container = {
              HealthCmd = "curl --globoff -fsS http://127.0.0.1:8080/health >/dev/null";
              HealthInterval = "10s";
              HealthTimeout = "5s";
              HealthRetries = "5";
              HealthStartPeriod = "300s";
              Notify = "healthy";
            };
            Service = {
              TimeoutStartSec = "900";
            };
          };
        };
        cpu-box-postgres = lib.mkMerge [
          {
            image = "docker.io/timescale/timescaledb-ha:pg16";
            network = [ "cpu-box.network" ];
            ports = [ "0.0.0.0:5432:5432" ];
            volumes = [ "cpu-box-postgres-data.volume:/home/postgres/pgdata" ];
            environment = {
              POSTGRES_DB = "app";
            };
            exec = "postgres -c shared_preload_libraries=pg_cron -c cron.database_name=app";
            extraConfig = {
              Container = {
                HealthCmd = "pg_isready -q -h 127.0.0.1 -p 5432 -U postgres";
                HealthInterval = "10s";
                HealthTimeout = "5s";
                HealthRetries = "5";
                HealthStartPeriod = "30s";
                Notify = "healthy";
              };
              Service = {
                TimeoutStartSec = "900";
              };
            };
          }
          { volumes = [ ("${postgresInit}" + ":/docker-entrypoint-initdb.d/10-stackgen.sql:ro") ]; }
          (mkIf (cfg.postgres.passwordFile != null) {
            volumes = [ (unitRaw cfg.postgres.passwordFile + ":/run/secrets/postgres-password:ro") ];
            environment = {
              POSTGRES_PASSWORD_FILE = "/run/secrets/postgres-password";
            };
          })
          (mkIf (cfg.postgres.passwordFile == null) {
            environment = {
              POSTGRES_HOST_AUTH_METHOD = "trust";
            };
          })
        ];
        cpu-box-redis = lib.mkMerge [
          {
            image = "docker.io/library/redis:7.4.6";
            network = [ "cpu-box.network" ];
            ports = [ "0.0.0.0:6379:6379" ];
            volumes = [ "cpu-box-redis-data.volume:/data" ];
            extraConfig = {
              Container = {
                HealthInterval = "10s";
                HealthTimeout = "5s";
                HealthRetries = "5";
                HealthStartPeriod = "30s";
                Notify = "healthy";
              };
              Service = {
                TimeoutStartSec = "900";
              };
            };
          }
          (mkIf (cfg.redis.passwordFile != null) {
            volumes = [ (unitRaw cfg.redis.passwordFile + ":/run/secrets/redis-password:ro") ];
            exec = "sh -c \"umask 077 && printf 'requirepass \\\"%%s\\\"\\\\n' \\\"\$\$(sed 's/[\\\\\\\\\\\"]/\\\\\\\\&/g' /run/secrets/redis-password)\\\" >/tmp/stackgen-redis.conf && { chown redis /tmp/stackgen-redis.conf 2>/dev/null || true; } && exec docker-entrypoint.sh redis-server /tmp/stackgen-redis.conf --appendonly yes --protected-mode no\"";
            extraConfig = {
              Container = {
                HealthCmd = "REDISCLI_AUTH=\"\$\$(cat /run/secrets/redis-password)\" redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG";
              };
            };
          })
          (mkIf (cfg.redis.passwordFile == null) {
            exec = "redis-server --appendonly yes --protected-mode no";
            extraConfig = {
              Container = {
                HealthCmd = "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG";
              };
            };
          })
        ];
        cpu-box-qdrant = lib.mkMerge [
          {
            image = "docker.io/qdrant/qdrant:v1.15.3";
            network = [ "cpu-box.network" ];
            ports = [
              "0.0.0.0:6333:6333"
              "0.0.0.0:6334:6334"
            ];
            volumes = [ "cpu-box-qdrant-data.volume:/qdrant/storage" ];
            environment = {
              QDRANT__TELEMETRY_DISABLED = "true";
            };
            extraConfig = {
              Container = {
                HealthCmd = "bash -c 'exec 3<>/dev/tcp/127.0.0.1/6333 && printf \"GET /readyz HTTP/1.0\\r\\n\\r\\n\" >&3 && grep -q \" 200 \" <&3'";
                HealthInterval = "10s";
                HealthTimeout = "5s";
                HealthRetries = "5";
                HealthStartPeriod = "30s";
                Notify = "healthy";
              };
              Service = {
                TimeoutStartSec = "900";
              };
            };
          }
          (mkIf (cfg.qdrant.environmentFile != null) {
            volumes = [ (unitRaw cfg.qdrant.environmentFile + ":/run/secrets/qdrant-api-key:ro") ];
            exec = "sh -c \"_sg_f=\$\$1; shift; _sg_ws=\$\$(printf ' \\\\t\\\\r'); _sg_n=0; _sg_found=0; while IFS= read -r _sg_line || [ -n \\\"\$\$_sg_line\\\" ]; do _sg_n=\$\$((_sg_n+1)); _sg_line=\$\${_sg_line#\\\"\$\${_sg_line%%%%[!\$\$_sg_ws]*}\\\"}; case \$\$_sg_line in '#'*|';'*) continue;; *=*) ;; *) continue;; esac; _sg_name=\$\${_sg_line%%%%=*}; _sg_name=\$\${_sg_name%%\\\"\$\${_sg_name##*[!\$\$_sg_ws]}\\\"}; _sg_value=\$\${_sg_line#*=}; _sg_value=\$\${_sg_value#\\\"\$\${_sg_value%%%%[!\$\$_sg_ws]*}\\\"}; _sg_value=\$\${_sg_value%%\\\"\$\${_sg_value##*[!\$\$_sg_ws]}\\\"}; case \$\$_sg_value in '\\\"'*'\\\"'|\\\"'\\\"*\\\"'\\\") _sg_value=\$\${_sg_value#?}; _sg_value=\$\${_sg_value%%?};; esac; case \$\$_sg_name in ''|[0-9]*|*[!A-Za-z0-9_]*|_sg_*) echo \\\"stackgen: line \$\$_sg_n of \$\$_sg_f is not NAME=value: skipped\\\" >&2; continue;; esac; export \\\"\$\$_sg_name=\$\$_sg_value\\\"; _sg_found=\$\$((_sg_found+1)); done <\\\"\$\$_sg_f\\\"; [ \\\"\$\$_sg_found\\\" -gt 0 ] || { echo \\\"stackgen: \$\$_sg_f sets no NAME=value variable\\\" >&2; exit 1; }; exec \\\"\$\$@\\\"\" stackgen-env /run/secrets/qdrant-api-key ./entrypoint.sh";
          })
        ];
      };
    };
  };
}
