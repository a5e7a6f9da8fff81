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
    nixpkgs.url = "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/nixos-26.05/nixexprs.tar.xz";
    home-manager = {
      url = "git+https://mirrors.tuna.tsinghua.edu.cn/git/home-manager.git?ref=release-26.05";
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
                    stateVersion = "26.05";
                  };
                }
              ];
            }).activationPackage;
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
                  system.stateVersion = "26.05";
                }
              ];
            }).config.system.build.toplevel;
        }
      );
    };
}
