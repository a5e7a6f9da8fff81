# Declarations mirroring home-manager's options that the rendered nix/home.nix sets, with
# home-manager's own types (modules/home-environment.nix, services/ollama.nix,
# services/podman/linux/*.nix; see /work/research/nix-options.md §9-11).
{ lib, pkgs, config, ... }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
  bool = opt types.bool false;
  strList = opt (types.listOf types.str) [ ];
  primitive = types.nullOr (types.oneOf [ types.bool types.int types.str types.path ]);
  primitiveAttrs = types.attrsOf (types.either primitive (types.listOf primitive));
  # podman-lib.extraConfigType: INI sections of the generated Quadlet unit
  extraConfigType = types.attrsOf (types.attrsOf (types.oneOf [ primitiveAttrs (types.listOf primitive) primitive ]));
  unitValue = types.oneOf [ types.str types.int types.bool types.path types.package (types.listOf types.str) ];
in
{
  options = {
    assertions = opt (types.listOf (types.submodule {
      options.assertion = mkOption { type = types.bool; };
      options.message = mkOption { type = types.str; };
    })) [ ];
    warnings = opt (types.listOf types.str) [ ];

    home.packages = opt (types.listOf types.package) [ ];
    # home-manager's modules/misc/nixpkgs.nix: nullOr configType (an attribute set that merges)
    nixpkgs.config = opt (types.nullOr (types.attrsOf types.anything)) null;
    home.sessionVariables = opt (types.lazyAttrsOf (types.nullOr (types.oneOf [ types.str types.path types.int types.float types.bool ]))) { };
    systemd.user.services = opt (types.attrsOf (types.attrsOf (types.attrsOf unitValue))) { };

    services.ollama = {
      enable = bool;
      package = opt types.package pkgs.ollama;
      host = opt types.str "127.0.0.1";
      port = opt types.port 11434;
      environmentVariables = opt (types.attrsOf types.str) { };
    };

    services.podman = {
      enable = bool;
      networks = opt (types.attrsOf (types.submodule {
        options.description = opt (types.nullOr types.str) null;
        options.subnet = opt (types.nullOr types.str) null;
      })) { };
      volumes = opt (types.attrsOf (types.submodule {
        options.description = opt (types.nullOr types.str) null;
      })) { };
      containers = opt (types.attrsOf (types.submodule {
        options = {
          image = mkOption { type = types.str; };
          ports = strList;
          volumes = strList;
          environment = opt primitiveAttrs { };
          environmentFile = strList;
          exec = opt (types.nullOr types.str) null;
          entrypoint = opt (types.nullOr types.str) null;
          devices = strList;
          network = mkOption {
            type = types.either types.str (types.listOf types.str);
            default = [ ];
            apply = value: if lib.isString value then [ value ] else value;
          };
          extraPodmanArgs = strList;
          extraConfig = opt extraConfigType { };
          autoStart = opt types.bool true;
        };
      })) { };
    };
  };

  # home-manager's platform assertion on the Linux-only podman options.
  config.assertions = [
    {
      assertion = config.services.podman.containers == { } || pkgs.stdenv.hostPlatform.isLinux;
      message = "The module services.podman.containers does not support your platform.";
    }
  ];
}
