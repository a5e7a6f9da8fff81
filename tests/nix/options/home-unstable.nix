# home-manager for nixos-unstable: its master branch.
{ imports = [ ./home-master.nix ]; }
