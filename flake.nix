{
  description = "stackgen: one stack.yaml rendered into a Nix dev shell, NixOS and home-manager modules, compose and Quadlet files";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (
        system: pkgs: {
          stackgen = pkgs.callPackage ./nix/package.nix { };
          default = self.packages.${system}.stackgen;
        }
      );

      # `nix develop` here: the tools to work on stackgen itself.
      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            inputsFrom = [ self.packages.${system}.stackgen ];
            packages = [
              pkgs.nix
              pkgs.podman
              pkgs.python3Packages.pytest
              pkgs.python3Packages.pytest-subprocess
              pkgs.python3Packages.hypothesis
              pkgs.check-jsonschema
            ];
          };
        }
      );

      nixosModules = import ./modules/nixos;
      homeModules = import ./modules/home;
      # home-manager's older name for the same output.
      homeManagerModules = self.homeModules;

      checks = forAllSystems (
        system: pkgs: {
          stackgen = self.packages.${system}.stackgen;
        }
      );
    };
}
