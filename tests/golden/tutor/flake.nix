# Rendered by stackgen 0.1.0 from the spec "tutor". Edit stack.yaml and run
# `stackgen render` rather than editing this file: stackgen refuses to overwrite hand edits.
{
  description = "Tutor de español, API";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.11";
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
        };
    in
    {
      devShells = forAllSystems (
        system: pkgs: {
          default = import ./nix/devshell.nix { inherit pkgs; };
        }
      );

      nixosModules.default = ./nix/nixos.nix;

      # `nix run .#services`: every service as a native process under process-compose.
      packages = forAllSystems (
        system: pkgs: {
          services = import ./nix/services.nix { inherit pkgs; };
        }
      );
      apps = forAllSystems (
        system: pkgs: {
          services = {
            type = "app";
            program = "${self.packages.${system}.services}/bin/services";
          };
        }
      );

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
      );
    };
}
