# home-manager module for the stack "ai-stack": packages, mirror variables, a user
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
  postgresInit = pkgs.writeText "ai-stack-postgres-init.sql" (
    lib.concatMapStrings (line: line + "\n") (
      [
        "-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing."
        "-- The postgres image runs this once, when it initializes an empty data volume."
        "CREATE ROLE \"aidb\" LOGIN;"
        "ALTER DATABASE \"aidb\" OWNER TO \"aidb\";"
        "\\connect \"aidb\""
        "CREATE EXTENSION IF NOT EXISTS \"vector\";"
      ]
      ++ lib.optionals (cfg.postgres.passwordFile != null) [
        "\\set password `cat /run/secrets/postgres-password`"
        "ALTER ROLE \"aidb\" WITH PASSWORD :'password';"
      ]
    )
  );
in
{
  imports = [
    ./modules/home/ollama-models.nix
  ];

  options.stackgen = {
    nixpkgsConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Set `nixpkgs.config` from ./nixpkgs-config.nix (CUDA builds, unfree allowed only for
        NVIDIA's licenses), which Ollama's CUDA build needs. Turn off under home-manager's
        `useGlobalPkgs`, and carry those settings in the system's nixpkgs.config instead.
      '';
    };
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
      description = ''
        Environment file with `QDRANT__SERVICE__API_KEY=...` (NAME=value lines), mounted into
        the container and read there, so the key is on no command line. null: no API key.
      '';
    };
    openWebui.environmentFile = mkOption {
      type = secretFile;
      default = null;
      description = ''
        Environment file with `WEBUI_SECRET_KEY=...` (the session signing key; NAME=value
        lines), mounted into the container and read there, so the key is on no command line.
      '';
    };
  };

  config = {
    nixpkgs.config = mkIf cfg.nixpkgsConfig (import ./nixpkgs-config.nix { inherit lib; });

    home.packages = [
      pkgs.python312
      pkgs.uv
      pkgs.git
      pkgs.curl
      pkgs.jq
      pkgs.ripgrep
    ];

    # Seen by login shells, not by systemd user services. home-manager writes each value as
    # `export NAME="value"` into hm-session-vars.sh: escaped for those double quotes.
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
      # home-manager writes it into the user unit's Environment= line as it is, where systemd
      # expands `%` specifiers; launchd (macOS) takes it literally.
      environmentVariables.HF_ENDPOINT = unitValue "https://hf-mirror.com";
    };
    # Pulled by ollama-models.service once Ollama answers (./modules/home/ollama-models.nix).
    stackgen.ollamaModels = [ "llama3.2:3b" "qwen2.5:7b" ];

    # Containers need Linux (home-manager asserts it).
    services.podman = mkIf pkgs.stdenv.hostPlatform.isLinux {
      enable = true;
      networks.ai-stack.description = "Network of the ai-stack services";
      volumes = {
        ai-stack-postgres-data = { };
        ai-stack-redis-data = { };
        ai-stack-qdrant-data = { };
        ai-stack-open-webui-data = { };
      };
      containers = {
        ai-stack-llama-cpp = {
          image = "ghcr.io/ggml-org/llama.cpp:server-cuda-b7018";
          network = [ "ai-stack.network" ];
          ports = [ "127.0.0.1:8080:8080" ];
          volumes = [ "/var/lib/llama-cpp/models:/var/lib/llama-cpp/models:ro" ];
          environment = {
            HF_ENDPOINT = "https://hf-mirror.com";
          };
          exec = "--model /var/lib/llama-cpp/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf --host 0.0.0.0 --port 8080 --ctx-size 4096 --n-gpu-layers 999";
          devices = [ "nvidia.com/gpu=all" ];
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
        ai-stack-postgres = lib.mkMerge [
          {
            image = "docker.io/pgvector/pgvector:0.8.1-pg17";
            network = [ "ai-stack.network" ];
            ports = [ "127.0.0.1:5432:5432" ];
            volumes = [ "ai-stack-postgres-data.volume:/var/lib/postgresql/data" ];
            environment = {
              POSTGRES_DB = "aidb";
            };
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
        ai-stack-redis = lib.mkMerge [
          {
            image = "docker.io/library/redis:7.4.6";
            network = [ "ai-stack.network" ];
            ports = [ "127.0.0.1:6379:6379" ];
            volumes = [ "ai-stack-redis-data.volume:/data" ];
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
            exec = "sh -c \"umask 077 && printf 'requirepass \\\"%%s\\\"\\\\n' \\\"\$\$(sed 's/[\\\\\\\\\\\"]/\\\\\\\\&/g' /run/secrets/redis-password)\\\" >/tmp/stackgen-redis.conf && { chown redis /tmp/stackgen-redis.conf 2>/dev/null || true; } && exec docker-entrypoint.sh redis-server /tmp/stackgen-redis.conf --appendonly yes --maxmemory 512mb --protected-mode no\"";
            extraConfig = {
              Container = {
                HealthCmd = "REDISCLI_AUTH=\"\$\$(cat /run/secrets/redis-password)\" redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG";
              };
            };
          })
          (mkIf (cfg.redis.passwordFile == null) {
            exec = "redis-server --appendonly yes --maxmemory 512mb --protected-mode no";
            extraConfig = {
              Container = {
                HealthCmd = "redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG";
              };
            };
          })
        ];
        ai-stack-qdrant = lib.mkMerge [
          {
            image = "docker.io/qdrant/qdrant:v1.15.3";
            network = [ "ai-stack.network" ];
            ports = [
              "127.0.0.1:6333:6333"
              "127.0.0.1:6334:6334"
            ];
            volumes = [ "ai-stack-qdrant-data.volume:/qdrant/storage" ];
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
        ai-stack-open-webui = lib.mkMerge [
          {
            image = "ghcr.io/open-webui/open-webui:0.6.26";
            network = [ "host" ];
            volumes = [ "ai-stack-open-webui-data.volume:/app/backend/data" ];
            environment = {
              SCARF_NO_ANALYTICS = "True";
              DO_NOT_TRACK = "True";
              ANONYMIZED_TELEMETRY = "False";
              HOST = "127.0.0.1";
              PORT = "3000";
              OLLAMA_BASE_URL = "http://127.0.0.1:11434";
              OPENAI_API_BASE_URL = "http://127.0.0.1:8080/v1";
              WEBUI_SECRET_KEY_FILE = "/app/backend/data/.webui_secret_key";
              HF_ENDPOINT = "https://hf-mirror.com";
              PIP_INDEX_URL = "https://pypi.tuna.tsinghua.edu.cn/simple";
              UV_DEFAULT_INDEX = "https://pypi.tuna.tsinghua.edu.cn/simple";
            };
            extraConfig = {
              Unit = {
                Requires = [
                  "ollama.service"
                  "podman-ai-stack-llama-cpp.service"
                ];
                After = [
                  "ollama.service"
                  "podman-ai-stack-llama-cpp.service"
                ];
              };
              Container = {
                HealthCmd = "curl --globoff -fsS http://127.0.0.1:3000/health >/dev/null";
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
          }
          (mkIf (cfg.openWebui.environmentFile != null) {
            volumes = [ (unitRaw cfg.openWebui.environmentFile + ":/run/secrets/open-webui-secret-key:ro") ];
            exec = "sh -c \"_sg_f=\$\$1; shift; _sg_ws=\$\$(printf ' \\\\t\\\\r'); _sg_n=0; _sg_found=0; while IFS= read -r _sg_line || [ -n \\\"\$\$_sg_line\\\" ]; do _sg_n=\$\$((_sg_n+1)); _sg_line=\$\${_sg_line#\\\"\$\${_sg_line%%%%[!\$\$_sg_ws]*}\\\"}; case \$\$_sg_line in '#'*|';'*) continue;; *=*) ;; *) continue;; esac; _sg_name=\$\${_sg_line%%%%=*}; _sg_name=\$\${_sg_name%%\\\"\$\${_sg_name##*[!\$\$_sg_ws]}\\\"}; _sg_value=\$\${_sg_line#*=}; _sg_value=\$\${_sg_value#\\\"\$\${_sg_value%%%%[!\$\$_sg_ws]*}\\\"}; _sg_value=\$\${_sg_value%%\\\"\$\${_sg_value##*[!\$\$_sg_ws]}\\\"}; case \$\$_sg_value in '\\\"'*'\\\"'|\\\"'\\\"*\\\"'\\\") _sg_value=\$\${_sg_value#?}; _sg_value=\$\${_sg_value%%?};; esac; case \$\$_sg_name in ''|[0-9]*|*[!A-Za-z0-9_]*|_sg_*) echo \\\"stackgen: line \$\$_sg_n of \$\$_sg_f is not NAME=value: skipped\\\" >&2; continue;; esac; export \\\"\$\$_sg_name=\$\$_sg_value\\\"; _sg_found=\$\$((_sg_found+1)); done <\\\"\$\$_sg_f\\\"; [ \\\"\$\$_sg_found\\\" -gt 0 ] || { echo \\\"stackgen: \$\$_sg_f sets no NAME=value variable\\\" >&2; exit 1; }; exec \\\"\$\$@\\\"\" stackgen-env /run/secrets/open-webui-secret-key bash start.sh";
          })
        ];
      };
    };
  };
}
