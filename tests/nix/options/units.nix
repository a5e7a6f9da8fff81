# The unit files NixOS would write for the rendered module's systemd.services, evaluated with
# nixpkgs' real lib against the option mirror. Each unit is written the way
# nixos/lib/systemd-lib.nix (serviceToUnit, attrsToSection) writes it: `Environment=` lines
# JSON-quoted (lib.strings.toJSON "NAME=value"), every other setting as `Name=value` verbatim,
# list values as repeated lines, and `script` as an executable that ExecStart= runs.
# The units nixpkgs' own modules derive from the options the rendered module sets are added
# as nixpkgs' modules build them (ollama.nix: environmentVariables + OLLAMA_HOST;
# open-webui.nix: `--host` spliced into ExecStart=, `environment`; llama-cpp.nix: arguments
# through utils.escapeSystemdExecArgs; qdrant.nix: ExecStart=, which JSON-quotes and doubles `%` and `$`).
{
  lib,
  mirror,
  module,
  # where the `script` of each unit is written (by the test) and run from
  scriptDir,
  extra ? [ ],
}:
let
  pkgs = import ./stub-pkgs.nix { inherit lib; };
  eval = lib.evalModules {
    modules = [
      mirror
      module
      { _module.args.pkgs = pkgs; }
    ]
    ++ extra;
  };
  cfg = eval.config;
  # nixos/lib/utils.nix escapeSystemdExecArg
  execArg = arg: lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON (toString arg));
  nixpkgsUnits =
    lib.optionalAttrs cfg.services.ollama.enable {
      ollama = {
        description = "Server for local large language models";
        environment = cfg.services.ollama.environmentVariables // {
          OLLAMA_HOST = "${cfg.services.ollama.host}:${toString cfg.services.ollama.port}";
        };
        serviceConfig.ExecStart = "/bin/true serve";
      };
    }
    // lib.optionalAttrs cfg.services.open-webui.enable {
      open-webui = {
        description = "User-friendly WebUI for LLMs";
        environment = cfg.services.open-webui.environment;
        serviceConfig.ExecStart = "/bin/true serve --host ${cfg.services.open-webui.host} --port ${toString cfg.services.open-webui.port}";
      };
    }
    // lib.optionalAttrs cfg.services.qdrant.enable {
      qdrant = {
        description = "Vector Search Engine for the next generation of AI applications";
        serviceConfig.ExecStart = "/bin/true --config-path /etc/qdrant.yaml";
      };
    }
    // lib.optionalAttrs (cfg.services.llama-cpp.enable && (cfg.services.llama-cpp.model or null) != null) {
      llama-cpp = {
        description = "LLaMA C++ server";
        environment = { };
        serviceConfig.ExecStart = "/bin/true " + lib.concatMapStringsSep " " execArg (
          [ "--host" cfg.services.llama-cpp.host "--port" cfg.services.llama-cpp.port "-m" cfg.services.llama-cpp.model ]
          ++ cfg.services.llama-cpp.extraFlags
        );
      };
    };
  # nixos/modules/virtualisation/oci-containers.nix (NixOS/nixpkgs 035a24e7ed33009b8a503ad0b76679665b8977a8),
  # mkService for the podman backend, with the options the rendered module sets: the `script`
  # that runs `podman run` (each value through escapeShellArg, the image as it is) and the
  # serviceConfig it sets; the rendered module's own settings for the unit merge in.
  # the submodule's podman settings: null (the docker backend, or as nixpkgs' config leaves them
  # for podman: { } with its defaults)
  sdnotify = c: if c ? podman && c.podman != null then c.podman.sdnotify else "conmon";
  ociUnits = lib.mapAttrs' (name: c: lib.nameValuePair "podman-${name}" {
    script = lib.concatStringsSep " \\\n  " (
      [ "exec podman " "run" "--name=${name}" "--log-driver=journald" "--cidfile=/run/${name}/ctr-id"
        "--cgroups=enabled" "--sdnotify=${sdnotify c}" "-d" "--replace" ]
      ++ lib.mapAttrsToList (k: v: "-e ${lib.escapeShellArg k}=${lib.escapeShellArg v}") c.environment
      ++ map (p: "-p ${lib.escapeShellArg p}") c.ports
      ++ map (v: "-v ${lib.escapeShellArg v}") c.volumes
      ++ map (d: "--device=${lib.escapeShellArg d}") c.devices
      ++ [ "--pull ${lib.escapeShellArg "missing"}" ]
      ++ map lib.escapeShellArg c.extraOptions
      ++ [ c.image ]
      ++ map lib.escapeShellArg c.cmd
    );
    serviceConfig = {
      TimeoutStartSec = 0;
      TimeoutStopSec = 120;
      Restart = "always";
      Environment = "PODMAN_SYSTEMD_UNIT=%n";
      Type = "notify";
      NotifyAccess = "all";
      User = "root";
    } // lib.optionalAttrs (sdnotify c == "healthy") {
      Delegate = true;
      RuntimeDirectory = name;
    };
  }) (cfg.virtualisation.oci-containers.containers or { });
  toOption = x: if x == true then "true" else if x == false then "false" else toString x;
  section = attrs: lib.concatStrings (lib.concatLists (lib.mapAttrsToList (name: value:
    map (x: "${name}=${toOption x}\n") (lib.toList value)) attrs));
  unitText = name: def:
    let
      unitConfig = lib.optionalAttrs ((def.description or "") != "") { Description = def.description; };
      script = lib.optionalAttrs ((def.script or "") != "") { ExecStart = "${scriptDir}/${name}"; };
    in
    "[Unit]\n" + section unitConfig + "\n[Service]\n"
    + lib.concatMapStrings (n: "Environment=${builtins.toJSON "${n}=${def.environment.${n}}"}\n") (lib.attrNames (def.environment or { }))
    + section (script // (def.serviceConfig or { }));
  # the rendered module's settings for these units (EnvironmentFile=) merge with nixpkgs'
  services = lib.recursiveUpdate (lib.recursiveUpdate cfg.systemd.services nixpkgsUnits) ociUnits;
in
lib.mapAttrs (name: def: {
  text = unitText name def;
  script = "set -e\n\n" + (def.script or "");
  environment = def.environment or { };
}) services
