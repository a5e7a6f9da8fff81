# nixos-unstable (26.11): ollama's models directory is `modelsDir`; llama-cpp takes RFC 42
# `settings` (host/port declared, the rest free-form flags); extraFlags is removed.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  opt = type: default: mkOption { inherit type default; };
in
{
  imports = [ ./nixos-common.nix ];
  options.services.ollama.modelsDir = opt types.str "/var/lib/ollama/models";
  options.services.llama-cpp = {
    enable = opt types.bool false;
    package = opt types.package pkgs.llama-cpp;
    settings = opt (types.submodule {
      freeformType = types.attrs;
      options.host = opt types.str "127.0.0.1";
      options.port = opt types.port 8080;
    }) { };
    openFirewall = opt types.bool false;
  };
}
