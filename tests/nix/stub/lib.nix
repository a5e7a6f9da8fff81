# A stand-in for nixpkgs' `lib`, enough to evaluate the rendered modules without nixpkgs:
# the mk* functions return tagged values (as the real ones do) that ./eval.nix resolves,
# types are names only (type checks need the real lib: tests/nix/options/).
let
  type = name: { inherit name; };
  typeOf1 = name: _: type name;
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
in
rec {
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  inherit mkOverride;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  mkOptionDefault = mkOverride 1500;
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = name: mkOption { type = types.bool; default = false; description = "Whether to enable ${name}."; };

  types = {
    bool = type "bool";
    str = type "str";
    int = type "int";
    float = type "float";
    port = type "port";
    path = type "path";
    package = type "package";
    lines = type "lines";
    attrs = type "attrs";
    anything = type "anything";
    nullOr = typeOf1 "nullOr";
    listOf = typeOf1 "listOf";
    attrsOf = typeOf1 "attrsOf";
    lazyAttrsOf = typeOf1 "lazyAttrsOf";
    strMatching = typeOf1 "strMatching";
    submodule = typeOf1 "submodule";
    enum = typeOf1 "enum";
    oneOf = typeOf1 "oneOf";
    either = _: typeOf1 "either";
  };

  inherit (builtins) elem filter concatStringsSep genList replaceStrings;
  concatMapStrings = f: xs: concatStringsSep "" (map f xs);
  all = builtins.all;
  toList = x: if builtins.isList x then x else [ x ];
  getName = x: x.pname or (builtins.parseDrvName x.name).name;
  getExe = p: "${p}/bin/${p.meta.mainProgram or p.pname}";
  genAttrs = names: f: builtins.listToAttrs (map (n: nameValuePair n (f n)) names);
  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: builtins.listToAttrs (mapAttrsToList f set);
  mapAttrsToList = f: set: map (n: f n set.${n}) (builtins.attrNames set);
  filterAttrs = pred: set: builtins.listToAttrs (
    builtins.concatMap (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ]) (builtins.attrNames set)
  );
  optional = c: x: if c then [ x ] else [ ];
  optionals = c: xs: if c then xs else [ ];
  optionalString = c: s: if c then s else "";
  optionalAttrs = c: s: if c then s else { };
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  hasSuffix = suffix: s:
    let
      ls = builtins.stringLength s;
      lx = builtins.stringLength suffix;
    in
    ls >= lx && builtins.substring (ls - lx) lx s == suffix;
  removePrefix = prefix: s:
    if hasPrefix prefix s then builtins.substring (builtins.stringLength prefix) (-1) s else s;
  removeSuffix = suffix: s:
    if hasSuffix suffix s then builtins.substring 0 (builtins.stringLength s - builtins.stringLength suffix) s else s;
  escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  escapeShellArgs = xs: concatStringsSep " " (map escapeShellArg xs);
}
