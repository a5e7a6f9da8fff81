# Declarations mirroring nixpkgs' NixOS options that the rendered nix/nixos.nix sets, with
# nixpkgs' own types and defaults (from /work/research/nix-options.md; see the README of
# tests/nix/options). Options that are the same on nixos-26.05 and nixos-unstable.
{ lib, pkgs, config, ... }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
  bool = opt types.bool false;
  package = name: opt types.package pkgs.${name};
  # systemd unit option values (nixos/lib/systemd-unit-options.nix: unitOption).
  primitive = types.oneOf [ types.bool types.int types.str types.path types.package ];
  unitOption = types.oneOf [ primitive (types.listOf primitive) ];
  unitList = opt (types.listOf types.str) [ ];
  semanticConfType =
    let
      confAtom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path types.package ]);
    in
    types.attrsOf (types.either confAtom (types.listOf confAtom));
in
{
  options = {
    assertions = opt (types.listOf (types.submodule {
      options.assertion = mkOption { type = types.bool; };
      options.message = mkOption { type = types.str; };
    })) [ ];
    warnings = opt (types.listOf types.str) [ ];

    nixpkgs.config = opt (types.attrsOf types.anything) { };
    nix.settings = opt (types.submodule {
      freeformType = semanticConfType;
      options.substituters = opt (types.listOf types.str) [ ];
      options.trusted-public-keys = opt (types.listOf types.str) [ ];
    }) { };
    programs.nix-ld = {
      enable = bool;
      package = package "nix-ld";
      libraries = opt (types.listOf types.package) [ pkgs.zlib pkgs.zstd pkgs.curl ];
    };

    hardware.graphics.enable = bool;
    hardware.nvidia.open = opt (types.nullOr types.bool) null;
    hardware.nvidia-container-toolkit.enable = bool;
    services.xserver.videoDrivers = opt (types.listOf types.str) [ "modesetting" "fbdev" ];
    networking.firewall.allowedTCPPorts = opt (types.listOf types.port) [ ];
    # The fleet target (nix/fleet/<host>/default.nix), read in NixOS/nixpkgs at commit
    # 040b4eb6c33439c14b2ed3ff0660131bee4ef852: extraInputRules from
    # nixos/modules/services/networking/firewall-nftables.nix (types.lines, ""), enable from
    # firewall.nix (true), nftables.enable from nftables.nix (false); hostName from
    # nixos/modules/tasks/network-interfaces.nix at commit 003a3fd2f05c2fe13e1bb6db3158d33004723870
    # (its strMatching pattern; default distroId, "nixos").
    networking.firewall.enable = opt types.bool true;
    networking.firewall.extraInputRules = opt types.lines "";
    networking.nftables.enable = bool;
    # hosts/<host>/hardware.nix sets it (nixos/modules/misc/version.nix: types.str, default
    # the release; a fixed string here)
    system.stateVersion = opt types.str "26.11";
    networking.hostName = opt (types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$") "nixos";

    systemd.services = opt (types.attrsOf (types.submodule {
      options = {
        description = opt types.str "";
        wants = unitList;
        after = unitList;
        before = unitList;
        requires = unitList;
        requiredBy = unitList;
        wantedBy = unitList;
        path = opt (types.listOf (types.either types.package types.str)) [ ];
        environment = opt (types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]))) { };
        serviceConfig = opt (types.attrsOf unitOption) { };
        script = opt types.lines "";
      };
    })) { };

    # nixos/modules/virtualisation/oci-containers.nix at NixOS/nixpkgs 035a24e7ed33009b8a503ad0b76679665b8977a8:
    # only the options the rendered module sets.
    virtualisation.oci-containers.backend = opt (types.enum [ "podman" "docker" ]) "podman";
    virtualisation.oci-containers.containers = opt (types.attrsOf (types.submodule {
      options = {
        image = mkOption { type = types.str; };
        cmd = opt (types.listOf types.str) [ ];
        environment = opt (types.attrsOf types.str) { };
        ports = opt (types.listOf types.str) [ ];
        volumes = opt (types.listOf types.str) [ ];
        dependsOn = opt (types.listOf types.str) [ ];
        extraOptions = opt (types.listOf types.str) [ ];
        devices = opt (types.listOf types.str) [ ];
        # nixpkgs sets `podman = mkIf (backend == "podman") { }` in the submodule's config; an
        # assertion refuses a non-null `podman` with the docker backend (mirrored below)
        podman = opt (types.nullOr (types.submodule {
          options.sdnotify = opt (types.enum [ "conmon" "healthy" "container" ]) "conmon";
          options.user = opt types.str "root";
        })) null;
      };
    })) { };

    services.ollama = {
      enable = bool;
      package = package "ollama";
      user = opt (types.nullOr types.str) null;
      home = opt types.str "/var/lib/ollama";
      host = opt types.str "127.0.0.1";
      port = opt types.port 11434;
      environmentVariables = opt (types.attrsOf types.str) { };
      loadModels = opt (types.listOf types.str) [ ];
      syncModels = bool;
      openFirewall = bool;
    };

    services.postgresql = {
      enable = bool;
      package = package "postgresql_17";
      settings = opt (types.submodule {
        freeformType = types.attrsOf (types.oneOf [ types.bool types.float types.int types.str ]);
        options.port = opt types.port 5432;
      }) { };
      ensureDatabases = opt (types.listOf types.str) [ ];
      ensureUsers = opt (types.listOf (types.submodule {
        options.name = mkOption { type = types.str; };
        options.ensureDBOwnership = bool;
      })) [ ];
      extensions = opt (types.coercedTo (types.listOf types.path) (exts: _: exts)
        (types.functionTo (types.listOf types.path))) (_: [ ]);
      enableTCPIP = bool;
      authentication = opt types.lines "";
    };

    services.redis.servers = opt (types.attrsOf (types.submodule ({ name, ... }: {
      options = {
        enable = bool;
        port = opt types.port (if name == "" then 6379 else 0);
        bind = opt (types.nullOr types.str) "127.0.0.1";
        requirePass = opt (types.nullOr types.str) null;
        requirePassFile = opt (types.nullOr types.path) null;
        appendOnly = opt types.bool false; # nixpkgs' default: off (stackgen turns it on)
        settings = opt (types.attrsOf (types.oneOf [ types.bool types.int types.str (types.listOf types.str) ])) { };
        openFirewall = bool;
      };
    }))) { };

    services.qdrant = {
      enable = bool;
      settings = mkOption { type = (pkgs.formats.yaml { }).type; };
    };

    services.open-webui = {
      enable = bool;
      package = package "open-webui";
      host = opt types.str "127.0.0.1";
      port = opt types.port 8080;
      environment = opt (types.attrsOf types.str) {
        SCARF_NO_ANALYTICS = "True";
        DO_NOT_TRACK = "True";
        ANONYMIZED_TELEMETRY = "False";
      };
      openFirewall = bool;
    };
  };

  # The assertions of nixpkgs' modules that the rendered module must satisfy.
  config = {
    # services.qdrant sets its defaults leaf by leaf with mkDefault.
    services.qdrant.settings = lib.mkIf config.services.qdrant.enable {
      service.host = lib.mkDefault "127.0.0.1";
      service.http_port = lib.mkDefault 6333;
      service.grpc_port = lib.mkDefault 6334;
      storage.storage_path = lib.mkDefault "/var/lib/qdrant/storage";
      telemetry_disabled = lib.mkDefault true;
    };
    assertions = [
      {
        assertion =
          config.hardware.nvidia-container-toolkit.enable -> lib.elem "nvidia" config.services.xserver.videoDrivers;
        message = "`nvidia-container-toolkit` requires nvidia drivers: add \"nvidia\" to `services.xserver.videoDrivers`";
      }
    ]
    ++ map (user: {
      assertion = user.ensureDBOwnership -> lib.elem user.name config.services.postgresql.ensureDatabases;
      message = "services.postgresql.ensureUsers.${user.name}.ensureDBOwnership needs a database of the same name";
    }) config.services.postgresql.ensureUsers
    ++ lib.mapAttrsToList (name: server: {
      assertion = !(server.requirePass != null && server.requirePassFile != null);
      message = "services.redis.servers.${name}: set only one of requirePass and requirePassFile";
    }) config.services.redis.servers
    # oci-containers.nix (035a24e7): podman settings only with the podman backend
    ++ lib.mapAttrsToList (name: c: {
      assertion = config.virtualisation.oci-containers.backend == "docker" -> c.podman == null;
      message = "virtualisation.oci-containers.containers.${name}: Cannot set `podman` option if backend is `docker`.";
    }) config.virtualisation.oci-containers.containers;
  };
}
