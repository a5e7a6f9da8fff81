# Reusable NixOS modules, exported as the flake's nixosModules.<name>. `default` imports them
# all: each does nothing until its own `stackgen.*` options are set.
{
  nvidia = ./nvidia.nix;
  model-fetch = ./model-fetch.nix;
  default.imports = [
    ./nvidia.nix
    ./model-fetch.nix
  ];
}
