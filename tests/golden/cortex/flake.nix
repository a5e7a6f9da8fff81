# Rendered by stackgen 0.1.0 from the spec "cortex". Edit stack.yaml and run
# `stackgen render` rather than editing this file: stackgen refuses to overwrite hand edits.
{
  description = "cortex";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.11";
  };

  outputs =
    { self, nixpkgs, ... }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
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
        {
          devshell = self.devShells.${system}.default;
        }
      );
    };
}
