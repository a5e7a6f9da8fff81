# Evaluate a rendered module against an option mirror with nixpkgs' real lib.evalModules.
# Every option value is forced (so every definition is type-checked), an undeclared option
# fails, and the result lists the failed assertions and the warnings.
{
  lib,
  mirror,
  module,
  extra ? [ ],
}:
let
  pkgs = import ./stub-pkgs.nix { inherit lib; };
  eval = lib.evalModules {
    modules = [
      mirror
      module
      { _module.args.pkgs = pkgs; }
    ]
    ++ extra;
  };
  inherit (eval) config;
  values = lib.mapAttrsRecursiveCond (attrs: !lib.isOption attrs) (_: option: option.value) (
    removeAttrs eval.options [ "_module" ]
  );
  postgresExtensions = lib.optionals (config ? services.postgresql && config.services.postgresql.enable) (
    config.services.postgresql.extensions config.services.postgresql.package.pkgs
  );
in
builtins.deepSeq [ values postgresExtensions ] {
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  inherit (config) warnings;
  extensions = map (p: p.name) postgresExtensions;
  # Unfree extensions: nixpkgs refuses them unless nixpkgs.config's predicate admits them.
  unfreeExtensions = map (p: p.name) (
    lib.filter (p: !lib.all (l: l.free or false) (lib.toList p.meta.license)) postgresExtensions
  );
}
