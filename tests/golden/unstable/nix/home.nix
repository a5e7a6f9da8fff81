# home-manager module for the stack "edge": packages, mirror variables, a user
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
in
{
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
    openWebui.environmentFile = mkOption {
      type = secretFile;
      default = "/run/secrets/open-webui.env";
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
    ];

    services.ollama = {
      enable = true;
      acceleration = false;
      host = "0.0.0.0";
      port = 11434;
    };

    # Containers need Linux (home-manager asserts it).
    services.podman = mkIf pkgs.stdenv.hostPlatform.isLinux {
      enable = true;
      networks.edge.description = "Network of the edge services";
      volumes = {
        edge-open-webui-data = { };
      };
      containers = {
        edge-llama-cpp = {
          image = "ghcr.io/ggml-org/llama.cpp:server-cuda-b7018";
          network = [ "edge.network" ];
          ports = [ "127.0.0.1:8080:8080" ];
          volumes = [ "/srv/models:/srv/models:ro" ];
          exec = "--model /srv/models/model.gguf --host 0.0.0.0 --port 8080 --ctx-size 8192 --n-gpu-layers 40";
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
        edge-open-webui = lib.mkMerge [
          {
            image = "ghcr.io/open-webui/open-webui:0.6.26";
            network = [ "host" ];
            volumes = [ "edge-open-webui-data.volume:/app/backend/data" ];
            environment = {
              SCARF_NO_ANALYTICS = "True";
              DO_NOT_TRACK = "True";
              ANONYMIZED_TELEMETRY = "False";
              HOST = "0.0.0.0";
              PORT = "8088";
              OLLAMA_BASE_URL = "http://127.0.0.1:11434";
              OPENAI_API_BASE_URL = "http://127.0.0.1:8080/v1";
              WEBUI_SECRET_KEY_FILE = "/app/backend/data/.webui_secret_key";
            };
            extraConfig = {
              Unit = {
                Requires = [
                  "ollama.service"
                  "podman-edge-llama-cpp.service"
                ];
                After = [
                  "ollama.service"
                  "podman-edge-llama-cpp.service"
                ];
              };
              Container = {
                HealthCmd = "curl --globoff -fsS http://127.0.0.1:8088/health >/dev/null";
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
