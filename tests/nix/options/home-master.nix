# home-manager master (for nixos-unstable): acceleration also accepts "vulkan" (NIXOS-FACTS.md).
{ lib, ... }:
{
  imports = [ ./home-common.nix ];
  options.services.ollama.acceleration = lib.mkOption {
    type = lib.types.nullOr (lib.types.enum [ false "rocm" "cuda" "vulkan" ]);
    default = null;
  };
}
