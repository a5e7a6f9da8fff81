# home-manager release-26.11: not seen (NIXOS-FACTS.md says only that master adds "vulkan").
# The narrower 26.05 enum stands for it, so a module that passes here passes on either shape.
{ imports = [ ./home-26.05.nix ]; }
