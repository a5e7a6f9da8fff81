# A stand-in for nixpkgs, enough to evaluate nix/devshell.nix without it: mkShell returns its
# arguments, packages are strings. Used by tests/nix and benchmarks/run.py (the shellHook).
let
  pkg = name: { outPath = "/nix/store/fake-${name}"; version = "1.0"; lib = "/nix/store/fake-${name}-lib"; };
  lib = {
    optionalString = c: s: if c then s else "";
    makeLibraryPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/lib") ps);
    # nixpkgs' definition (lib/strings.nix), for the shellHook's quoted words.
    escapeShellArg = arg: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg) + "'";
  };
  cuda = { cuda_cudart = pkg "cudart"; libcublas = pkg "cublas"; cudnn = pkg "cudnn"; nccl = pkg "nccl"; cuda_nvcc = pkg "nvcc"; };
in
{
  inherit lib;
  mkShell = attrs: attrs;
  stdenv = { cc.cc.lib = pkg "gcc-lib"; hostPlatform.isLinux = true; };
  zlib = pkg "zlib"; libGL = pkg "libGL"; glib = pkg "glib"; uv = pkg "uv";
  python311 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.11"; };
  python312 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.12"; };
  python313 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.13"; };
  python314 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.14"; };
  cudaPackages_12 = cuda; cudaPackages_13 = cuda;
  git = pkg "git";
}
