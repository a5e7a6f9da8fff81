# nixos-26.11 (and nixos-unstable, see nixos-unstable.nix): ollama's models directory is
# `modelsDir` (PR #537550; `models` is a deprecated alias there); llama-cpp takes RFC 42
# `settings` (host/port declared, the rest free-form flags); extraFlags and modelsPreset are
# removed (PR #528626). Source: NIXOS-FACTS.md; the stored nixpkgs module files predate 26.05.
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
