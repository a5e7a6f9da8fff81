# The machine-specific part of the host "gpu-1" (10.0.0.11) of the fleet "ai-fleet".
# THIS FILE IS YOURS: stackgen wrote it once as a placeholder and never overwrites it.
#
# To make it describe the machine, as NixOS's own configuration.nix does:
#   1. ssh root@10.0.0.11 nixos-generate-config --show-hardware-config > hosts/gpu-1/hardware-configuration.nix
#      (file systems, kernel modules; `git add` it: the flake sees only files git knows)
#   2. below: import it, choose the boot loader, and delete the assertion.
# Until then `nix flake check` and `nixos-rebuild` stop at that assertion, which says this,
# rather than at NixOS's own complaint about a missing root file system.
{ lib, ... }:
{
  # imports = [ ./hardware-configuration.nix ];

  # boot.loader.systemd-boot.enable = true;
  # boot.loader.efi.canTouchEfiVariables = true;

  # The NixOS release the machine was first installed with; keep it when nixpkgs moves on.
  system.stateVersion = lib.mkDefault "26.11";

  assertions = [
    {
      assertion = false;
      message = "hosts/gpu-1/hardware.nix is still stackgen's placeholder: put the machine's `nixos-generate-config --show-hardware-config` (ssh root@10.0.0.11) in hosts/gpu-1/hardware-configuration.nix, import it there and delete this assertion (see the file's top)";
    }
  ];
}
