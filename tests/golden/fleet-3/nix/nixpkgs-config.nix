# nixpkgs configuration for "ai-fleet": CUDA builds, and unfree packages allowed only
# where NVIDIA's own licenses are the reason (never a blanket allowUnfree).
{ lib }:
let
  nvidiaLicenses = [
    "CUDA EULA"
    "cuDNN EULA"
    "cuTENSOR EULA"
    "cuSPARSELt EULA"
    "NVidia OptiX EULA"
  ];
  # The driver packages carry the generic "unfree" license; allow them by name.
  nvidiaDriverPackages = [
    "nvidia-x11"
    "nvidia-settings"
    "nvidia-persistenced"
  ];
in
{
  cudaSupport = true;
  cudaCapabilities = [ "8.9" ];
  allowUnfreePredicate =
    pkg:
    let
      licenses = lib.toList (pkg.meta.license or [ ]);
    in
    builtins.elem (lib.getName pkg) nvidiaDriverPackages
    || (
      licenses != [ ]
      && lib.all (license: (license.free or false) || builtins.elem (license.shortName or "") nvidiaLicenses) licenses
    );
}
