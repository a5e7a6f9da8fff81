# A stand-in for nixpkgs, enough to evaluate nix/devshell.nix without it: mkShell returns its
# arguments, packages are strings. Used by tests/nix and benchmarks/run.py (the shellHook).
let
  pkg = name: { outPath = "/nix/store/fake-${name}"; version = "1.0"; lib = "/nix/store/fake-${name}-lib"; };
  # A multi-output package as nixpkgs' CUDA redistributables are: `outputs` names them, each is an
  # attribute of its own, and the package itself is its first output, at `prefix` + name.
  multi = prefix: name: outputs:
    let
      out = output: { outPath = "${prefix}${name}${if output == "out" then "" else "-${output}"}"; outputName = output; };
      attrs = builtins.listToAttrs (map (output: { name = output; value = out output; }) outputs);
    in
    attrs // out (builtins.head outputs) // { inherit outputs; version = "1.0"; };
  lib = {
    optionalString = c: s: if c then s else "";
    optional = c: x: if c then [ x ] else [ ];
    optionals = c: xs: if c then xs else [ ];
    concatMap = f: xs: builtins.concatLists (map f xs);
    makeLibraryPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/lib") ps);
    # nixpkgs' definition (lib/strings.nix), for the shellHook's quoted words.
    escapeShellArg = arg: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString arg) + "'";
  };
  # cudaPackages with every member at `prefix` + its name (tests pass a directory of their own
  # and lay out real libraries there); the output names follow nixpkgs'
  # pkgs/development/cuda-modules/packages.
  cudaPackagesAt = prefix: {
    cuda_cudart = multi prefix "cudart" [ "out" "dev" "include" "lib" "static" "stubs" ];
    cuda_nvcc = multi prefix "nvcc" [ "out" ];
    cuda_cccl = multi prefix "cccl" [ "out" "dev" "include" ];
    cuda_crt = multi prefix "crt" [ "out" "include" ];
    libcublas = multi prefix "cublas" [ "out" "dev" "include" "lib" "static" "stubs" ];
    cudnn = multi prefix "cudnn" [ "out" "dev" "include" "lib" "static" ];
    nccl = multi prefix "nccl" [ "out" "dev" "static" ];
  };
  cuda = cudaPackagesAt "/nix/store/fake-";
in
{
  inherit lib cudaPackagesAt;
  mkShell = attrs: attrs;
  # The join is not built: its arguments are kept so tests can see what went in.
  symlinkJoin = args: args // { outPath = "/nix/store/fake-join-${args.name}"; };
  stdenv = { cc.cc.lib = pkg "gcc-lib"; hostPlatform.isLinux = true; };
  zlib = pkg "zlib"; libGL = pkg "libGL"; glib = pkg "glib"; uv = pkg "uv";
  python311 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.11"; };
  python312 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.12"; };
  python313 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.13"; };
  python314 = pkg "python" // { interpreter = "/nix/store/fake-python/bin/python3.14"; };
  cudaPackages_12 = cuda; cudaPackages_13 = cuda;
  git = pkg "git";
}
