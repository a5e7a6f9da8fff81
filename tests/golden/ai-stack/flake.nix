# Rendered by stackgen 0.1.0 from the spec "ai-stack". Edit stack.yaml and run
# `stackgen render` rather than editing this file: stackgen refuses to overwrite hand edits.
{
  description = "AI agent development environment (Ollama, llama.cpp, Postgres+pgvector, Redis, Qdrant)";

  # Binary caches for this stack. Nix uses them only for trusted users or with
  # `--accept-flake-config` (or `accept-flake-config = true` in nix.conf).
  nixConfig = {
    extra-substituters = [
      "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store"
      "https://mirrors.ustc.edu.cn/nix-channels/store"
      "https://mirror.sjtu.edu.cn/nix-channels/store"
      "https://mirror.nju.edu.cn/nix-channels/store"
      "https://cache.nixos-cuda.org"
    ];
    extra-trusted-public-keys = [
      "cache.nixos-cuda.org:74DUi4Ye579gUqzH4ziL9IyiJBlDpMRn9MBN8oNan9M="
    ];
  };

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
