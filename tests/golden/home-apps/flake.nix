# Rendered by stackgen 0.1.0 from the spec "home-apps". Edit stack.yaml and run
# `stackgen render` rather than editing this file: stackgen refuses to overwrite hand edits.
{
  description = "home-apps";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.11";
    home-manager = {
      url = "github:nix-community/home-manager/release-26.11";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    { self, nixpkgs, ... }@inputs:
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

      homeModules.default = ./nix/home.nix;
      # The name home-manager's own flake used before `homeModules`: kept for older configurations.
      homeManagerModules.default = self.homeModules.default;

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
          home-manager = evaluates "home-manager"
            (inputs.home-manager.lib.homeManagerConfiguration {
              # plain nixpkgs, as a user's home configuration has: the module sets its own config
              pkgs = nixpkgs.legacyPackages.${system};
              modules = [
                self.homeModules.default
                {
                  home = {
                    username = "stackgen-check";
                    homeDirectory = "/home/stackgen-check";
                    stateVersion = "26.11";
                  };
                }
              ];
            }).activationPackage;
        }
      );
    };
}
