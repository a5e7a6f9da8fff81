# home-manager release-26.05: services.ollama.acceleration knows no "vulkan" yet.
{ lib, ... }:
{
  imports = [ ./home-common.nix ];
  options.services.ollama.acceleration = lib.mkOption {
    type = lib.types.nullOr (lib.types.enum [ false "rocm" "cuda" ]);
    default = null;
  };
}
