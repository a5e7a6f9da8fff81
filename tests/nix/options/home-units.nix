# The user unit files home-manager would write for the rendered module's
# systemd.user.services, built by home-manager's own modules/systemd.nix (its option types and
# toSystemdIni), with nixpkgs' real lib. Two evaluations: the rendered module against the option
# mirror (as eval.nix does), then its systemd.user.services fed to home-manager's module, whose
# unit text lands in xdg.configFile."systemd/user/<unit>.service". Only what that path needs is
# stubbed: a Linux platform, writeTextFile (which returns the text itself) and the options the
# module's config sets besides.
{
  lib,
  homeManager,
  mirror,
  module,
  extra ? [ ],
}:
let
  pkgs = import ./stub-pkgs.nix { inherit lib; };
  rendered = lib.evalModules {
    modules = [
      mirror
      module
      { _module.args.pkgs = pkgs; }
    ]
    ++ extra;
  };
  # as modules/lib/stdlib-extended.nix extends it (without its maintainer list, which
  # nixpkgs.lib's checkout lacks and this evaluation never reads)
  hmLib = lib.extend (self: _: { hm = import (homeManager + "/modules/lib") { lib = self; }; });
  anything = lib.mkOption { type = hmLib.types.anything; default = { }; };
  hm = hmLib.evalModules {
    modules = [
      (homeManager + "/modules/systemd.nix")
      {
        config._module.args.pkgs = pkgs // {
          # the module appends "/<unit file name>" to the file it writes: here, to its text
          writeTextFile = { text, ... }: text;
          systemd = pkgs.coreutils;
          # user.conf's format (systemd.user.settings, unused here)
          formats = pkgs.formats // { ini = _: { type = hmLib.types.attrsOf (hmLib.types.attrsOf hmLib.types.anything); }; };
        };
        options.xdg.configFile = lib.mkOption { type = hmLib.types.attrsOf hmLib.types.anything; default = { }; };
        options.assertions = anything // { type = hmLib.types.listOf hmLib.types.anything; default = [ ]; };
        options.home = anything;
        options.xdg.configHome = anything;
        options.xdg.dataFile = anything;
        options.meta = anything;
        config.systemd.user.services = rendered.config.systemd.user.services;
      }
    ];
  };
  files = hm.config.xdg.configFile;
in
lib.mapAttrs (
  name: _: lib.removeSuffix "/${name}.service" files."systemd/user/${name}.service".source
) rendered.config.systemd.user.services
