# A stand-in for nixpkgs' `pkgs` when the rendered modules are evaluated against the option
# mirrors: packages are fake derivations (enough for `types.package`), builders return them.
{ lib }:
let
  drv = name: {
    type = "derivation";
    inherit name;
    pname = name;
    version = "0";
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    drvPath = "/nix/store/00000000000000000000000000000000-${name}.drv";
    meta.mainProgram = name;
    override = _args: drv "${name}-overridden";
  };
  # Extensions carry a license: `timescaledb` is built under the Timescale License (unfree),
  # `timescaledb-apache` under Apache-2.0 (pkgs/servers/sql/postgresql/ext/timescaledb.nix);
  # for the others a free license stands in for each one's own (all free in nixpkgs).
  extension = license: name: drv name // { meta.license = license; };
  postgresql = version: drv "postgresql-${version}" // {
    pkgs = lib.genAttrs [ "pgvector" "postgis" "pg_cron" "pg_repack" "pg_partman" ] (extension lib.licenses.mit) // {
      timescaledb = extension lib.licenses.tsl "timescaledb";
      timescaledb-apache = extension lib.licenses.asl20 "timescaledb-apache";
    };
  };
in
lib.genAttrs [
  "ollama" "ollama-cuda" "ollama-cpu" "ollama-rocm" "ollama-vulkan" "llama-cpp" "open-webui"
  "qdrant" "redis" "nix-ld" "podman" "zlib" "zstd" "libGL" "glib" "curl" "coreutils" "uv" "git"
  "jq" "ripgrep" "python311" "python312" "python313" "python314"
] drv
// {
  stdenv = {
    cc.cc = drv "gcc" // { lib = drv "gcc-lib"; };
    hostPlatform = { isLinux = true; system = "x86_64-linux"; };
  };
  postgresql_14 = postgresql "14";
  postgresql_15 = postgresql "15";
  postgresql_16 = postgresql "16";
  postgresql_17 = postgresql "17";
  postgresql_18 = postgresql "18";
  writeText = name: _text: drv name;
  writeShellScript = name: _text: drv name;
  # pkgs.formats.yaml { }: the value type nixpkgs gives it (lib/ formats.nix, `yaml_1_1`).
  formats.yaml = _: {
    type =
      let
        inherit (lib) types;
        valueType = types.nullOr (types.oneOf [
          types.bool types.int types.float types.str types.path
          (types.attrsOf valueType) (types.listOf valueType)
        ]) // { description = "YAML value"; };
      in
      valueType;
  };
}
