# NVIDIA GPU wiring in one switch: the proprietary driver, OpenGL/CUDA driver libraries at
# /run/opengl-driver/lib, and (optionally) CDI specs so containers get the GPU through
# `--device nvidia.com/gpu=all`. Part of stackgen; copied into each rendered tree.
{ config, lib, ... }:
let
  inherit (lib) mkEnableOption mkIf mkOption types;
  cfg = config.stackgen.nvidia;
in
{
  options.stackgen.nvidia = {
    enable = mkEnableOption "the NVIDIA driver with CUDA-ready driver libraries";

    open = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Use NVIDIA's open kernel module (`hardware.nvidia.open`). Right for Turing (RTX 20xx)
        and newer; set false for older GPUs. Drivers >= 560 require an explicit choice.
      '';
    };

    containerToolkit = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Generate CDI specs (`hardware.nvidia-container-toolkit`) so podman and docker
        containers can use `--device nvidia.com/gpu=all`.
      '';
    };
  };

  # No CUDA library goes into `programs.nix-ld.libraries` or a session LD_LIBRARY_PATH here:
  # either comes before RUNPATH in the loader's search, so a nixpkgs libcudnn/libnccl there would
  # shadow the nvidia-*-cu12 wheels torch loads (tests/nix/test_cuda_loader.py checks the modules).
  # Programs built by nixpkgs find the driver through their own RUNPATH (addDriverRunpath).
  config = mkIf cfg.enable {
    hardware.graphics.enable = true;
    # Also loads the kernel module on headless machines; nvidia-container-toolkit asserts it.
    services.xserver.videoDrivers = [ "nvidia" ];
    hardware.nvidia.open = cfg.open;
    hardware.nvidia-container-toolkit.enable = mkIf cfg.containerToolkit true;
  };
}
