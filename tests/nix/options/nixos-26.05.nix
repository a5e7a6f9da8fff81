# nixos-26.05: ollama's models directory is `models`; llama-cpp takes model/extraFlags/host/port.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
in
{
  imports = [ ./nixos-common.nix ];
  options.services.ollama.models = opt types.str "/var/lib/ollama/models";
  options.services.llama-cpp = {
    enable = opt types.bool false;
    package = opt types.package pkgs.llama-cpp;
    model = opt (types.nullOr types.path) null;
    modelsDir = opt (types.nullOr types.path) null;
    modelsPreset = opt (types.nullOr (types.attrsOf types.attrs)) null;
    extraFlags = opt (types.listOf types.str) [ ];
    host = opt types.str "127.0.0.1";
    port = opt types.port 8080;
    openFirewall = opt types.bool false;
  };
}
