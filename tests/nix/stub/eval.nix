# A miniature module system over ./lib.nix: loads a module and its imports, pushes mkIf and
# mkMerge down to the leaves as nixpkgs' lib does, applies priorities (mkForce < plain <
# mkDefault < option defaults), and returns the resulting `config` with packages and
# functions shown as strings, ready for builtins.toJSON.
{
  module,
  # Option values from outside the module that it reads through `options` (nixpkgs' own).
  externalOptions ? { },
}:
let
  lib = import ./lib.nix;
  pkgs = import ../options/stub-pkgs.nix { inherit lib; };
  args = { inherit lib pkgs config options; };

  load = m: let f = import m; in if builtins.isFunction f then f args else f;
  collect = m: let loaded = load m; in [ loaded ] ++ builtins.concatMap collect (loaded.imports or [ ]);
  modules = collect module;

  isOption = v: builtins.isAttrs v && (v._type or null) == "option";
  isPlainAttrs = v: builtins.isAttrs v && !(v ? _type) && (v.type or null) != "derivation";
  mergeTrees =
    a: b:
    a // builtins.mapAttrs (n: v: if a ? ${n} && isPlainAttrs v && !isOption v then mergeTrees a.${n} v else v) b;
  options = mergeTrees externalOptions (builtins.foldl' mergeTrees { } (map (m: m.options or { }) modules));
  # Option defaults are definitions of the lowest priority.
  defaults =
    let
      go = tree: builtins.mapAttrs (_: v: if isOption v then lib.mkOptionDefault (v.default or null) else go v) tree;
    in
    go (builtins.foldl' mergeTrees { } (map (m: m.options or { }) modules));

  # mkMerge/mkIf/mkOverride around an attribute set -> a list of attribute sets whose values
  # carry the properties (conditions are not evaluated here: attribute names stay lazy).
  pushDown =
    def:
    let
      t = def._type or null;
    in
    if t == "merge" then
      builtins.concatMap pushDown def.contents
    else if t == "if" then
      map (builtins.mapAttrs (_: lib.mkIf def.condition)) (pushDown def.content)
    else if t == "override" then
      map (builtins.mapAttrs (_: lib.mkOverride def.priority)) (pushDown def.content)
    else
      [ def ];

  # A value with its properties -> [ { priority; value; } ], with false conditions dropped.
  discharge =
    priority: def:
    let
      t = def._type or null;
    in
    if t == "if" then
      (if def.condition then discharge priority def.content else [ ])
    else if t == "merge" then
      builtins.concatMap (discharge priority) def.contents
    else if t == "override" then
      discharge def.priority def.content
    else
      [ { inherit priority; value = def; } ];

  mergeDefs =
    path: defs:
    let
      all = builtins.concatMap (discharge 100) defs;
      best = builtins.foldl' (m: d: if d.priority < m then d.priority else m) 9999 all;
      chosen = map (d: d.value) (builtins.filter (d: d.priority == best) all);
      where = builtins.concatStringsSep "." path;
    in
    if chosen == [ ] then
      null
    else if builtins.all isPlainAttrs chosen then
      mergeAttrs path (builtins.concatMap pushDown chosen)
    else if builtins.all builtins.isList chosen then
      builtins.concatLists chosen
    else if builtins.length chosen == 1 then
      builtins.head chosen
    else
      throw "conflicting definitions of ${where}";

  mergeAttrs =
    path: sets:
    let
      names = builtins.attrNames (builtins.foldl' (a: b: a // b) { } sets);
    in
    builtins.listToAttrs (
      map (name: {
        inherit name;
        value = mergeDefs (path ++ [ name ]) (map (s: s.${name}) (builtins.filter (s: s ? ${name}) sets));
      }) names
    );

  config = mergeAttrs [ ] (builtins.concatMap pushDown ([ defaults ] ++ map (m: m.config or { }) modules));

  show =
    v:
    if builtins.isFunction v then
      "<function>"
    else if builtins.isAttrs v && (v.type or null) == "derivation" then
      "<package ${v.name}>"
    else if builtins.isAttrs v then
      builtins.mapAttrs (_: show) v
    else if builtins.isList v then
      map show v
    else
      v;
in
{
  inherit config;
  json = show config;
}
