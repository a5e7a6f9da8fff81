"""stackgen: one stack.yaml, rendered into Nix, NixOS, home-manager, compose and Quadlet files."""

__version__ = "0.1.0"
