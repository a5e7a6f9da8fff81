# The hardware of the host "db-1" (10.0.0.12) of the fleet "ai-fleet".
# THIS FILE IS YOURS: stackgen wrote it once as a placeholder and never overwrites it.
#
# Replace the placeholder lines with what the machine itself reports:
#   ssh root@10.0.0.12 nixos-generate-config --show-hardware-config
# (file systems, boot loader, kernel modules), plus anything else only this machine needs.
# Until then the host does not evaluate: NixOS refuses a system without a root file system.
{ lib, ... }:
{
  # fileSystems."/" = {
  #   device = "/dev/disk/by-label/nixos";
  #   fsType = "ext4";
  # };
  # boot.loader.systemd-boot.enable = true;
  # boot.loader.efi.canTouchEfiVariables = true;

  # The NixOS release the machine was first installed with; keep it when nixpkgs moves on.
  system.stateVersion = lib.mkDefault "26.11";
}
