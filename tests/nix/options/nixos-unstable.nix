# nixos-unstable: the option shapes of 26.11, which branched from it (NIXOS-FACTS.md).
{ imports = [ ./nixos-26.11.nix ]; }
