# NixOS module for the stack "zokor" (nixos-26.11 option names).
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
  options.stackgen = {
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
      trusted-public-keys = mkIf cfg.binaryCaches [
        "tuna.example-1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
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
      # Environment= lines: nixpkgs JSON-quotes them but leaves `%` to systemd.
      environmentVariables.HF_ENDPOINT = mkDefault "https://hf-mirror.com";
    };

    services.llama-cpp = {
      enable = mkDefault true;
      # Each key becomes a llama-server flag (--key value).
      settings = {
        host = mkDefault "127.0.0.1";
        port = mkDefault 8080;
        model = mkDefault "/var/lib/llama-cpp/models/model.gguf";
        ctx-size = mkDefault 8192;
      };
    };

    services.postgresql = {
      enable = mkDefault true;
      package = mkDefault pkgs.postgresql_17;
      settings = {
        port = mkDefault 5432;
        shared_preload_libraries = mkDefault "timescaledb";
      };
      ensureDatabases = [ "metrics" ];
      # Each database is owned by a role of the same name.
      ensureUsers = [
        {
          name = "metrics";
          ensureDBOwnership = true;
        }
      ];
      extensions = ps: [
        ps.pgvector
        ps.timescaledb-apache
      ];
    };
    # What ensure* cannot do: create the extensions and set the owners' passwords.
    systemd.services.stackgen-postgres-setup = {
      description = "Extensions and passwords for the zokor databases";
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
        psql -v ON_ERROR_STOP=1 -d metrics -c 'CREATE EXTENSION IF NOT EXISTS vector'
        psql -v ON_ERROR_STOP=1 -d metrics -c 'CREATE EXTENSION IF NOT EXISTS timescaledb'
      ''
      + lib.optionalString (cfg.postgres.passwordFile != null) ''
        # psql reads the file itself, so the password never appears in a command line.
        psql -v ON_ERROR_STOP=1 -d postgres <<'SQL'
        \set password `cat "$CREDENTIALS_DIRECTORY/password"`
        ALTER ROLE "metrics" WITH LOGIN PASSWORD :'password';
        SQL
      '';
    };
  };
}
