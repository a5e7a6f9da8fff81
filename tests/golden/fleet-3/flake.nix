# Rendered by stackgen 0.1.0 from the spec "ai-fleet". Edit stack.yaml and run
# `stackgen render` rather than editing this file: stackgen refuses to overwrite hand edits.
{
  description = "AI stack over three hosts (GPU, data, applications)";

  # Binary caches for this stack. Nix uses them only for trusted users or with
  # `--accept-flake-config` (or `accept-flake-config = true` in nix.conf).
  nixConfig = {
    extra-substituters = [
      "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store"
      "https://mirrors.ustc.edu.cn/nix-channels/store"
      "https://mirror.sjtu.edu.cn/nix-channels/store"
      "https://mirror.nju.edu.cn/nix-channels/store"
      "https://mirrors.bfsu.edu.cn/nix-channels/store"
      "https://cache.nixos-cuda.org"
    ];
    extra-trusted-public-keys = [
      "cache.nixos-cuda.org:74DUi4Ye579gUqzH4ziL9IyiJBlDpMRn9MBN8oNan9M="
    ];
  };

  # From a China mirror (mirrors.flake_inputs: mirror), not GitHub: nixpkgs as the channel's
  # nixexprs.tar.xz, a flake like the GitHub tree. `nix flake update` fetches the newest.
  inputs = {
    nixpkgs.url = "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/nixos-26.11/nixexprs.tar.xz";
  };

  outputs =
    { self, nixpkgs, ... }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f system (pkgsFor system));
      pkgsFor =
        system:
        import nixpkgs {
          inherit system;
          config = import ./nix/nixpkgs-config.nix { inherit lib; };
        };
    in
    {
      devShells = forAllSystems (
        system: pkgs: {
          default = import ./nix/devshell.nix { inherit pkgs; };
        }
      );

      nixosModules.default = ./nix/nixos.nix;

      # The fleet (hosts: in stack.yaml): `nixos-rebuild switch --flake .#<host> --target-host
      # root@<address>`, or bash hosts/deploy.sh for all of them. hosts/<host>/hardware.nix is yours.
      nixosConfigurations = {
        gpu-1 = lib.nixosSystem {
          modules = [
            ./hosts/gpu-1/hardware.nix
            ./nix/fleet/gpu-1
            { nixpkgs.hostPlatform = "x86_64-linux"; }
          ];
        };
        db-1 = lib.nixosSystem {
          modules = [
            ./hosts/db-1/hardware.nix
            ./nix/fleet/db-1
            { nixpkgs.hostPlatform = "x86_64-linux"; }
          ];
        };
        app-1 = lib.nixosSystem {
          modules = [
            ./hosts/app-1/hardware.nix
            ./nix/fleet/app-1
            { nixpkgs.hostPlatform = "x86_64-linux"; }
          ];
        };
      };

      # `nix flake check` builds or evaluates each of these.
      checks = forAllSystems (
        system: pkgs:
        let
          # Builds nothing but a text file: evaluating its name type-checks every option
          # (and the NixOS assertions) against this flake's nixpkgs and home-manager.
          evaluates =
            name: drv:
            pkgs.writeText "${name}-evaluates" (builtins.unsafeDiscardStringContext drv.drvPath);
        in
        {
          devshell = self.devShells.${system}.default;
        }
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          # A minimal machine: just enough (boot, fileSystems) for the module system to finish.
          nixos = evaluates "nixos"
            (lib.nixosSystem {
              modules = [
                self.nixosModules.default
                {
                  nixpkgs.hostPlatform = system;
                  boot.loader.grub.enable = false;
                  fileSystems."/" = {
                    device = "none";
                    fsType = "tmpfs";
                  };
                  system.stateVersion = "26.11";
                }
              ];
            }).config.system.build.toplevel;
        }
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          # The host's services and firewall on a minimal machine (its hardware.nix is yours:
          # nixosConfigurations.gpu-1 evaluates once the steps at its top are done).
          fleet-gpu-1 = evaluates "fleet-gpu-1"
            (lib.nixosSystem {
              modules = [
                ./nix/fleet/gpu-1
                {
                  nixpkgs.hostPlatform = system;
                  boot.loader.grub.enable = false;
                  fileSystems."/" = {
                    device = "none";
                    fsType = "tmpfs";
                  };
                  system.stateVersion = "26.11";
                }
              ];
            }).config.system.build.toplevel;
          # The host's services and firewall on a minimal machine (its hardware.nix is yours:
          # nixosConfigurations.db-1 evaluates once the steps at its top are done).
          fleet-db-1 = evaluates "fleet-db-1"
            (lib.nixosSystem {
              modules = [
                ./nix/fleet/db-1
                {
                  nixpkgs.hostPlatform = system;
                  boot.loader.grub.enable = false;
                  fileSystems."/" = {
                    device = "none";
                    fsType = "tmpfs";
                  };
                  system.stateVersion = "26.11";
                }
              ];
            }).config.system.build.toplevel;
          # The host's services and firewall on a minimal machine (its hardware.nix is yours:
          # nixosConfigurations.app-1 evaluates once the steps at its top are done).
          fleet-app-1 = evaluates "fleet-app-1"
            (lib.nixosSystem {
              modules = [
                ./nix/fleet/app-1
                {
                  nixpkgs.hostPlatform = system;
                  boot.loader.grub.enable = false;
                  fileSystems."/" = {
                    device = "none";
                    fsType = "tmpfs";
                  };
                  system.stateVersion = "26.11";
                }
              ];
            }).config.system.build.toplevel;
        }
      );
    };
}
