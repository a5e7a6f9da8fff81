# Rendered by stackgen 0.1.0 from the spec "hello-llm". Edit stack.yaml and run
# `stackgen render` rather than editing this file: stackgen refuses to overwrite hand edits.
{
  description = "hello-llm";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    home-manager = {
      url = "github:nix-community/home-manager/release-26.05";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    { self, nixpkgs, ... }@inputs:
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

      nixosModules.default = ./nix/nixos.nix;

      homeManagerModules.default = ./nix/home.nix;

      # `nix flake check` builds or evaluates each of these.
      checks = forAllSystems (
        system: pkgs:
        {
          devshell = self.devShells.${system}.default;
        }
      );
    };
}
