# home-manager module for the stack "home-apps": packages, mirror variables, a user
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
  # Quadlet hands a volume source to ExecStart=, where systemd expands
  # `%` and `$`; doubled, they stay literal.
  unitRaw = lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ];
  # One Environment= word of a user unit: quoted, with C escapes for `\`, `"` and line breaks
  # and tabs, and `%` doubled (systemd expands specifiers there; `$` is literal in Environment=).
  envWord =
    name: value:
    "\"" + lib.replaceStrings [ "\\" "\"" "%" "\n" "\r" "\t" ] [ "\\\\" "\\\"" "%%" "\\n" "\\r" "\\t" ] "${name}=${value}" + "\"";
  # What the apps' health waits run: bash (writeShellScript), curl, coreutils, then the unit's PATH.
  waitPath = "export PATH=${pkgs.curl}/bin:${pkgs.coreutils}/bin:$PATH\n";
  # Run once by the postgres image on an empty data volume.
  postgresInit = pkgs.writeText "home-apps-postgres-init.sql" (
    lib.concatMapStrings (line: line + "\n") (
      [
        "-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing."
        "-- The postgres image runs this once, when it initializes an empty data volume."
        "CREATE ROLE \"notes\" LOGIN;"
        "ALTER DATABASE \"notes\" OWNER TO \"notes\";"
        "\\connect \"notes\""
        "CREATE EXTENSION IF NOT EXISTS \"vector\";"
      ]
      ++ lib.optionals (cfg.postgres.passwordFile != null) [
        "\\set password `cat /run/secrets/postgres-password`"
        "ALTER ROLE \"notes\" WITH PASSWORD :'password';"
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
      default = "/run/secrets/pg";
      description = ''
        File holding the password of the postgres superuser and of each database's owner
        role. null: passwordless ("trust") logins on the published port.
      '';
    };
    redis.passwordFile = mkOption {
      type = secretFile;
      default = "/run/secrets/redis";
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
  };

  config = {
    home.packages = [
      pkgs.python312
      pkgs.uv
    ];

    services.ollama = {
      enable = true;
      host = "127.0.0.1";
      port = 11434;
    };
    # Pulled by ollama-models.service once Ollama answers (./modules/home/ollama-models.nix).
    stackgen.ollamaModels = [ "llama3.2:3b" ];

    # The app's `command:` as a user service; the words escaped for ExecStart=.
    systemd.user.services.home-apps-notes = {
      Unit = {
        Description = "notes of home-apps";
        Requires = [ "ollama.service" "podman-home-apps-postgres.service" "podman-home-apps-redis.service" "podman-home-apps-qdrant.service" ];
        After = [ "ollama.service" "podman-home-apps-postgres.service" "podman-home-apps-redis.service" "podman-home-apps-qdrant.service" ];
      };
      Service = {
        # Not an absolute path: env(1) finds the program on PATH (the home profile first).
        ExecStart = "${pkgs.coreutils}/bin/env " + "uv run --project /srv/notes notes-api --port 8092";
        Environment =
          # the home profile (standalone, nix.useXdg, or the NixOS module's), then the system's;
          # %h and %u are systemd's specifiers for the user's home and name
          [ "PATH=%h/.nix-profile/bin:%h/.local/state/nix/profile/bin:/etc/profiles/per-user/%u/bin:/run/current-system/sw/bin:/usr/local/bin:/usr/bin:/bin" ]
          ++ lib.mapAttrsToList envWord (
          {
            LOG_LEVEL = "info";
            OLLAMA_URL = "http://127.0.0.1:11434";
            OLLAMA_BASE_URL = "http://127.0.0.1:11434";
            OLLAMA_HOST = "127.0.0.1:11434";
            POSTGRES_URL = "postgresql://notes@127.0.0.1:5432/notes";
            DATABASE_URL = "postgresql://notes@127.0.0.1:5432/notes";
            REDIS_URL = "redis://127.0.0.1:6379";
            QDRANT_URL = "http://127.0.0.1:6333";
          }
          // lib.optionalAttrs (cfg.postgres.passwordFile != null) { POSTGRES_PASSWORD_FILE = cfg.postgres.passwordFile; }
          // lib.optionalAttrs (cfg.redis.passwordFile != null) { REDIS_PASSWORD_FILE = cfg.redis.passwordFile; }
          // lib.optionalAttrs (cfg.qdrant.environmentFile != null) { QDRANT_API_KEY_FILE = cfg.qdrant.environmentFile; }
        );
        # Starts once the services it uses answer (Ollama's unit counts as started before that).
        ExecStartPre = "${pkgs.writeShellScript "home-apps-notes-wait" (waitPath + "set -u\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:11434/api/version ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'ollama did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\ndeadline=\$((SECONDS + 300))\nuntil ( curl --globoff -fsS -o /dev/null --max-time 4 http://127.0.0.1:6333/readyz ) >/dev/null 2>&1; do\n  if [ \"\$SECONDS\" -ge \"\$deadline\" ]; then echo 'qdrant did not become healthy within 300 s' >&2; exit 1; fi\n  sleep 2\ndone\n")}";
        TimeoutStartSec = 690;
        Restart = "on-failure";
        RestartSec = 5;
      };
      Install.WantedBy = [ "default.target" ];
    };

    # Containers need Linux (home-manager asserts it).
    services.podman = mkIf pkgs.stdenv.hostPlatform.isLinux {
      enable = true;
      networks.home-apps.description = "Network of the home-apps services";
      volumes = {
        home-apps-postgres-data = { };
        home-apps-redis-data = { };
        home-apps-qdrant-data = { };
      };
      containers = {
        home-apps-postgres = lib.mkMerge [
          {
            image = "docker.io/pgvector/pgvector:0.8.1-pg17";
            network = [ "home-apps.network" ];
            ports = [ "127.0.0.1:5432:5432" ];
            volumes = [ "home-apps-postgres-data.volume:/var/lib/postgresql/data" ];
            environment = {
              POSTGRES_DB = "notes";
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
        home-apps-redis = lib.mkMerge [
          {
            image = "docker.io/library/redis:7.4.6";
            network = [ "home-apps.network" ];
            ports = [ "127.0.0.1:6379:6379" ];
            volumes = [ "home-apps-redis-data.volume:/data" ];
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
        home-apps-qdrant = lib.mkMerge [
          {
            image = "docker.io/qdrant/qdrant:v1.15.3";
            network = [ "home-apps.network" ];
            ports = [
              "127.0.0.1:6333:6333"
              "127.0.0.1:6334:6334"
            ];
            volumes = [ "home-apps-qdrant-data.volume:/qdrant/storage" ];
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
        home-apps-indexer = lib.mkMerge [
          {
            image = "docker.io/library/python:3.12-slim";
            network = [ "host" ];
            environment = {
              OLLAMA_URL = "http://127.0.0.1:11434";
              OLLAMA_BASE_URL = "http://127.0.0.1:11434";
              OLLAMA_HOST = "127.0.0.1:11434";
              NOTES_URL = "http://127.0.0.1:8092";
              REDIS_URL = "redis://127.0.0.1:6379";
              POSTGRES_URL = "postgresql://notes@127.0.0.1:5432/notes";
              DATABASE_URL = "postgresql://notes@127.0.0.1:5432/notes";
            };
            exec = "python -m http.server --help";
            extraConfig = {
              Unit = {
                Requires = [
                  "ollama.service"
                  "home-apps-notes.service"
                  "podman-home-apps-redis.service"
                  "podman-home-apps-postgres.service"
                ];
                After = [
                  "ollama.service"
                  "home-apps-notes.service"
                  "podman-home-apps-redis.service"
                  "podman-home-apps-postgres.service"
                ];
              };
              Service = {
                TimeoutStartSec = "900";
              };
            };
          }
          (mkIf (cfg.redis.passwordFile != null) {
            volumes = [ (unitRaw cfg.redis.passwordFile + ":/run/secrets/redis-password:ro") ];
            environment = {
              REDIS_PASSWORD_FILE = "/run/secrets/redis-password";
            };
          })
          (mkIf (cfg.postgres.passwordFile != null) {
            volumes = [ (unitRaw cfg.postgres.passwordFile + ":/run/secrets/postgres-password:ro") ];
            environment = {
              POSTGRES_PASSWORD_FILE = "/run/secrets/postgres-password";
            };
          })
        ];
      };
    };
  };
}
