# The host "gpu-1" (10.0.0.11) of the fleet "ai-fleet": its services
# (./services.nix), each bound to 10.0.0.11, and their ports open to the fleet's other
# hosts only. Rendered by stackgen 0.1.0; change stack.yaml and re-render instead
# of editing. flake.nix adds ../../../hosts/gpu-1/hardware.nix (yours).
{ config, lib, ... }:
{
  imports = [ ./services.nix ];

  config = {
    networking.hostName = lib.mkDefault "gpu-1";

    # Source-address rules, not allowedTCPPorts (which admits anyone): they are nftables rules
    # in the firewall's input-allow chain, so the firewall must be the nftables one.
    networking.nftables.enable = lib.mkDefault true;
    networking.firewall.extraInputRules = lib.concatStringsSep "\n" [
      "ip saddr { 10.0.0.12, 10.0.0.13 } tcp dport { 8080, 8081, 11434 } accept comment \"ai-fleet: services for the fleet's hosts\""
    ];
    assertions = [
      {
        assertion = config.networking.firewall.enable && config.networking.nftables.enable;
        message = "stackgen: the fleet's firewall rules for gpu-1 need networking.firewall.enable and networking.nftables.enable";
      }
    ];
  };
}
